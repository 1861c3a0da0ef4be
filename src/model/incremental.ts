// The loader the agent keeps from one commit to the next. `load` reads a whole working tree; `update` takes the
// paths a commit changed and re-reads, re-parses and re-validates only those files, keeping the cross-file checks
// (duplicate names, MACs and IPs, roles, images, operations) right for the whole lab through indexes it updates
// as files come and go. Entities of unchanged files keep their identity from one result to the next, which is
// what lets the renderer skip the hosts whose inputs are the same objects as last time.
//
// Both produce exactly what a from-scratch load would (test/model-incremental.test.ts checks that on random edit
// sequences): problems are gathered category by category in the same order and then sorted the same way.

import { buildHost, buildImage, buildProfile, buildSite } from './build.ts';
import { checkBmcTls, type CaVerdicts } from './check-bmc-tls.ts';
import { checkHostAddress, checkSiteAddresses, duplicateIp, duplicateMac, ipUse, macUses, networkContext, type AddressUse, type NetworkContext } from './check-network.ts';
import { checkOperations } from './check-operations.ts';
import { checkDiscoveryImage } from './site-discovery.ts';
import { checkHostRole, checkProfileImage } from './check-references.ts';
import { checkTextSecrets } from './check-secrets.ts';
import { checkSiteSections } from './check-site-sections.ts';
import { checkSopsRegexes } from './check-sops.ts';
import { checkTalosBase, talosBaseFiles } from './check-talos-base.ts';
import { checkProfileTemplates } from './check-templates.ts';
import { fileProblem, listedKind, listYamlFiles, loadDocument, namedFileProblem, refOf, stem } from './documents.ts';
import { KIND_DIRS, SITE_FILE, SOPS_FILE, YAML_FILE, type EntityKind } from './lab-files.ts';
import { DEFAULT_LAB_LIMITS, type LabLimits } from './lab-limits.ts';
import { SecretKeys } from './check-secrets.ts';
import { CONTROL_CHAR, LabTooLargeError, LabTree, printablePath, type FileRead, type LabFiles } from './lab-tree.ts';
import { labFiles } from './snapshot-tree.ts';
import type { CommitSnapshot } from '../source/commit-snapshot.ts';
import { NothingLoadedError } from './nothing-loaded-error.ts';
import { capProblems, compareProblems, formatRef, problem } from './problems.ts';
import { insertSorted, removeSorted } from './sorted-list.ts';
import type { Host, Image, Lab, LabProblem, Profile, Site } from './types.ts';
import type { FieldRefs } from '../core/source-ref.ts';
import { UseIndex, type Use } from './use-index.ts';
import { YamlFile } from './yaml-source.ts';

export interface LoadResult {
  /** Null when there is any problem (or no site). */
  lab: Lab | null;
  problems: LabProblem[];
}

/** A changed path as `git diff --name-only` gives it (relative to the lab root, forward slashes). */
export type ChangedPathLike = string | { path: string };

export interface LabLoaderOptions {
  limits?: LabLimits;
  /** Called with the real path of every file opened (tests check that reads stay in the tree). */
  onOpen?: (realPath: string) => void;
}

interface DocState<T> {
  file: string;
  /** Bytes read from the file (what it counts toward maxLabBytes). */
  bytes: number;
  /** Parse, secret, schema and file-name problems of this file alone. */
  problems: readonly LabProblem[];
  readProblem?: LabProblem;
  /** Built when the document passed its schema. */
  entity?: T;
}

interface HostState extends DocState<Host> {
  /** Problems of `bmc.tls`. */
  tls: readonly LabProblem[];
  /** When `bmc.tls.ca` names a file: what was read, and the document to build the host again from if it changes. */
  ca?: { path: string; read: FileRead; value: unknown; refs: FieldRefs };
  /** Address and role problems; null while an input changed since they were computed. */
  checks: readonly LabProblem[] | null;
}

interface ProfileState extends DocState<Profile> {
  yaml?: YamlFile;
  /** The files the profile read (`boot.config.file`, `boot.config.talosBase`), and what was read. */
  reads: Array<{ path: string; read: FileRead }>;
}

interface SiteState {
  read: FileRead;
  problems: LabProblem[];
  site?: Site;
  sections: LabProblem[];
  network?: NetworkContext;
  addresses: LabProblem[];
}

/** The lab's SOPS file, read (and checked against the YAML caps) like any lab file; the agent decrypts it. */
interface SopsState {
  read: FileRead;
  problems: LabProblem[];
}

/** What is derived from all profiles and images together: small, so computed whole whenever one changes. */
interface Derived {
  profiles: Map<string, Profile>;
  images: Map<string, Image>;
  brokenProfiles: Set<string>;
  brokenImages: Set<string>;
  known: string;
  /** Template and missing-file problems of every valid profile. */
  templates: LabProblem[];
  /** Secrets in the config files read. */
  configSecrets: LabProblem[];
  imageRefs: LabProblem[];
}

type NamedUse<T> = Use & { entity: T };
type AddressIndexUse = Use & { use: AddressUse };

const NO_PROBLEMS: readonly LabProblem[] = Object.freeze([]);

export class LabLoader {
  /**
   * The revision the last successful `load` or `update` was given, so a caller knows what to diff the next commit
   * against; null after one that threw (the state is then partial: the next call loads the whole tree).
   */
  revision: string | null = null;
  /** Whether the state is what the last call finished (false while one runs and after one threw). */
  private complete = false;
  private dir: string | null = null;
  private readonly limits: LabLimits;
  private readonly secretKeys = new SecretKeys();
  private readonly onOpen: ((realPath: string) => void) | undefined;
  /** The tree the current call reads through (it counts the bytes read against maxLabBytes). */
  private tree: LabFiles = new LabTree('.');
  /** What `tree` is between calls: a snapshot's files are not held after the call that read them. */
  private readonly idle: LabFiles = this.tree;
  /** Bytes the lab of the last finished call holds, counted as a whole load counts them. */
  private heldBytes = 0;
  private site: SiteState | null = null;
  private sops: SopsState | null = null;
  /** Paths anywhere in the tree with control characters in their names (the tree is refused for them). */
  private pathProblems: LabProblem[] = [];
  /** Documents that are symbolic links: read again on every update (their target may change unseen). */
  private readonly linked = new Map<string, EntityKind>();
  private readonly hosts = new Map<string, HostState>();
  private readonly profiles = new Map<string, ProfileState>();
  private readonly images = new Map<string, DocState<Image>>();
  /** Every YAML file of each kind directory, sorted (also those that failed). */
  private readonly files: Record<EntityKind, string[]> = { Host: [], Profile: [], Image: [] };
  private listProblems: LabProblem[] = [];
  private readonly names: Record<EntityKind, UseIndex<NamedUse<Host | Profile | Image>>> = { Host: new UseIndex(), Profile: new UseIndex(), Image: new UseIndex() };
  private readonly macs = new UseIndex<AddressIndexUse & { mac: string }>();
  private readonly ips = new UseIndex<AddressIndexUse>();
  private readonly roles = new Map<string, Set<string>>();
  private readonly wiping = new Map<string, Host>();
  private readonly caHosts = new Set<string>();
  /**
   * Each CA file as the last successful call read it, and as the current call reads it (once, however many hosts
   * name it). A read of the same text keeps the earlier object, so a host's CA compares by identity.
   */
  private caReads = new Map<string, FileRead>();
  private caReadsNow = new Map<string, FileRead>();
  /** What each CA text was found to be during the current call (10,000 hosts may name one file). */
  private caVerdicts: CaVerdicts = new Map();
  private derived: Derived | null = null;

  constructor(options: LabLoaderOptions = {}) {
    this.limits = options.limits ?? DEFAULT_LAB_LIMITS;
    this.onOpen = options.onOpen;
  }

  /**
   * Reads the whole lab in `dir`, forgetting anything loaded before. A lab larger than maxLabBytes stops the load
   * at the file that goes past it: that one problem is the result (and the next update loads whole again).
   * `snapshot`: the files of the commit `dir` is being checked out at, read instead of `dir` (the same result).
   */
  load(dir: string, revision: string | null = null, snapshot?: CommitSnapshot): LoadResult {
    this.begin(dir, 0, snapshot);
    try {
      return this.loadWhole(dir, revision);
    } catch (err) {
      if (!(err instanceof LabTooLargeError)) throw err;
      return { lab: null, problems: [problem({ file: printablePath(err.file), line: 1, col: 1 }, 'lab-too-large', err.message)] };
    } finally {
      this.tree = this.idle;
    }
  }

  private loadWhole(dir: string, revision: string | null): LoadResult {
    this.reset(dir);
    this.pathProblems = this.tree.pathsWithControlChars().map((path) =>
      problem({ file: path, line: 1, col: 1 }, 'unsafe-path', 'this path has a control character in its name; forseti refuses a lab repository holding such a path (rename it)'),
    );
    this.site = this.loadSite();
    this.sops = this.loadSops();
    for (const { dir: kindDir, kind } of KIND_DIRS) {
      const listed = listYamlFiles(this.tree, kindDir);
      if (listed.problem) this.listProblems.push(listed.problem);
      for (const { file, link } of listed.files) this.put(kind, file, this.tree.read(file), link);
    }
    this.derive();
    for (const state of this.hosts.values()) state.checks = this.hostChecks(state);
    return this.finish(revision);
  }

  /**
   * Applies a commit to the lab loaded before: `changed` lists the paths that differ between the two commits
   * (added, modified or deleted), `dir` holds the new commit (or `snapshot` does, read instead). Falls back to a
   * whole load when there is nothing to build on or the change is not one of files (a kind directory replaced, a
   * symbolic link to a directory).
   */
  update(dir: string, changed: Iterable<ChangedPathLike>, revision: string | null = null, snapshot?: CommitSnapshot): LoadResult {
    const previousSite = this.complete && this.dir === dir && this.listProblems.length === 0 && this.pathProblems.length === 0 ? this.site : null;
    this.begin(dir, this.heldBytes, snapshot);
    if (!previousSite || KIND_DIRS.some((k) => this.tree.entryKind(k.dir) === 'link')) return this.load(dir, revision, snapshot);
    try {
      return this.updateFrom(previousSite, dir, changed, revision, snapshot);
    } catch (err) {
      // The bytes counted from the last load on are an upper bound: a whole load counts exactly, and says where it stops.
      if (err instanceof LabTooLargeError) return this.load(dir, revision, snapshot);
      throw err;
    } finally {
      this.tree = this.idle;
    }
  }

  private updateFrom(previousSite: SiteState, dir: string, changed: Iterable<ChangedPathLike>, revision: string | null, snapshot: CommitSnapshot | undefined): LoadResult {
    const candidates: Record<EntityKind, Set<string>> = { Host: new Set(), Profile: new Set(), Image: new Set() };
    for (const [file, kind] of this.linked) candidates[kind].add(file);
    for (const entry of changed) {
      const path = typeof entry === 'string' ? entry : entry.path;
      if (CONTROL_CHAR.test(path)) return this.load(dir, revision, snapshot);
      const [top, child] = path.split('/');
      const kind = KIND_DIRS.find((k) => k.dir === top)?.kind;
      if (!kind) continue; // site.yaml and the files profiles and hosts name are read again below in any case
      if (child === undefined) return this.load(dir, revision, snapshot);
      if (YAML_FILE.test(child)) candidates[kind].add(`${top}/${child}`);
    }

    const stale = new Set<string>();
    this.site = this.siteUnchanged(previousSite) ?? this.loadSite();
    const siteChanged = this.site !== previousSite;
    this.sops = this.loadSops();

    for (const file of candidates.Host) {
      this.remove('Host', file);
      this.putListed('Host', file);
      stale.add(file);
    }
    // a copy: refreshCa takes a changed host out of caHosts and puts it back, which would visit it again
    for (const file of [...this.caHosts]) if (this.refreshCa(file)) stale.add(file);

    let profilesChanged = false;
    for (const kind of ['Profile', 'Image'] as const) {
      for (const file of candidates[kind]) {
        this.remove(kind, file);
        this.putListed(kind, file);
        profilesChanged = true;
      }
    }
    if (this.refreshConfigs()) profilesChanged = true;
    if (profilesChanged) {
      const before = this.derived;
      this.derive();
      for (const role of this.changedRoles(before)) for (const file of this.roles.get(role) ?? []) stale.add(file);
    }

    if (siteChanged) for (const state of this.hosts.values()) state.checks = this.hostChecks(state);
    else {
      for (const file of stale) {
        const state = this.hosts.get(file);
        if (state) state.checks = this.hostChecks(state);
      }
    }
    return this.finish(revision);
  }

  /**
   * Marks the state unfinished until `finish`: a call that throws leaves it so, and the next one loads whole. The
   * call reads through a new tree that starts counting at `used` bytes.
   */
  private begin(dir: string, used = 0, snapshot?: CommitSnapshot): void {
    this.revision = null;
    this.complete = false;
    this.caReadsNow = new Map();
    this.caVerdicts = new Map();
    this.tree = labFiles(dir, { limits: this.limits, ...(this.onOpen && { onOpen: this.onOpen }) }, snapshot);
    this.tree.used = used;
  }

  private finish(revision: string | null): LoadResult {
    const result = this.result();
    this.caReads = this.caReadsNow;
    this.caReadsNow = new Map();
    this.heldBytes = this.bytesHeld();
    this.revision = revision;
    this.complete = true;
    return result;
  }

  /** The bytes a whole load of the same tree would count: every file once, a config file once per profile naming it. */
  private bytesHeld(): number {
    let bytes = (this.site?.read.bytes ?? 0) + (this.sops?.read.bytes ?? 0);
    const cas = new Map<string, number>();
    for (const state of this.hosts.values()) {
      bytes += state.bytes;
      if (state.ca) cas.set(state.ca.path, state.ca.read.bytes);
    }
    for (const ca of cas.values()) bytes += ca;
    for (const state of this.profiles.values()) bytes += state.reads.reduce((sum, r) => sum + r.read.bytes, state.bytes);
    for (const state of this.images.values()) bytes += state.bytes;
    return bytes;
  }

  private reset(dir: string): void {
    this.dir = dir;
    this.site = null;
    this.hosts.clear();
    this.profiles.clear();
    this.images.clear();
    for (const { kind } of KIND_DIRS) {
      this.files[kind] = [];
      this.names[kind].clear();
    }
    this.listProblems = [];
    this.pathProblems = [];
    this.sops = null;
    this.linked.clear();
    this.macs.clear();
    this.ips.clear();
    this.roles.clear();
    this.wiping.clear();
    this.caHosts.clear();
    this.derived = null;
  }

  private loadSite(): SiteState {
    const read = this.tree.read(SITE_FILE);
    const state: SiteState = { read, problems: [], sections: [], addresses: [] };
    if (read.refusal) {
      state.problems.push(fileProblem(SITE_FILE, read.refusal));
      return state;
    }
    if (read.text === undefined) {
      state.problems.push(problem({ file: SITE_FILE, line: 1, col: 1 }, 'missing-site', `the lab repository has no ${SITE_FILE} (expected at ${this.tree.root}/${SITE_FILE})`));
      return state;
    }
    const loaded = loadDocument(SITE_FILE, read.text, 'Site', this.limits, this.secretKeys);
    state.problems.push(...loaded.problems);
    if (loaded.document?.valid) {
      const { value, refs } = loaded.document.yaml;
      const site = buildSite(value, refs);
      state.site = site;
      state.sections = checkSiteSections(value, refs);
      state.network = networkContext(site);
      if (state.network) state.addresses = checkSiteAddresses(site, state.network);
    }
    return state;
  }

  /** site.yaml is read on every update (it may be a link to another file of the tree); the same text keeps the same site. */
  private siteUnchanged(previous: SiteState): SiteState | undefined {
    const read = this.tree.read(SITE_FILE);
    return sameRead(read, previous.read) ? previous : undefined;
  }

  /**
   * secrets.sops.yaml is read on every load: it must be a file of the tree within the caps, and YAML without
   * duplicate keys (the agent decrypts it; its parser leaves that check to this one).
   */
  private loadSops(): SopsState {
    const read = this.tree.read(SOPS_FILE);
    if (read.refusal) return { read, problems: [fileProblem(SOPS_FILE, read.refusal)] };
    const text = read.text;
    if (text === undefined) return { read, problems: [] };
    const parsed = YamlFile.parse(SOPS_FILE, text, { limits: this.limits });
    const problems = parsed.yaml ? checkSopsRegexes(parsed.yaml) : parsed.problems;
    return { read, problems: capProblems(problems, this.limits.maxProblems, 'file') };
  }

  /** Puts `file` if it is something a listing of its directory would list. */
  private putListed(kind: EntityKind, file: string): void {
    const listed = listedKind(this.tree, file);
    if (listed) this.put(kind, file, this.tree.read(file), listed.link);
  }

  /** Reads and indexes one file of a kind directory (`read` of a file that vanished meanwhile: nothing). */
  private put(kind: EntityKind, file: string, read: FileRead, link: boolean): void {
    if (read.text === undefined && !read.refusal) return;
    insertSorted(this.files[kind], file);
    if (link) this.linked.set(file, kind);
    if (kind === 'Host') {
      const state: HostState = { file, bytes: read.bytes, problems: NO_PROBLEMS, tls: NO_PROBLEMS, checks: null };
      this.hosts.set(file, state);
      const yaml = this.document(state, read, 'Host');
      if (yaml) this.buildHostEntity(state, yaml.value, yaml.refs);
      this.indexHost(state);
    } else if (kind === 'Profile') {
      const state: ProfileState = { file, bytes: read.bytes, problems: NO_PROBLEMS, reads: [] };
      this.profiles.set(file, state);
      const yaml = this.document(state, read, 'Profile');
      if (yaml) {
        state.yaml = yaml;
        this.buildProfileEntity(state);
      }
      if (state.entity) this.names.Profile.add(state.entity.name, { file, i: 0, entity: state.entity });
    } else {
      const state: DocState<Image> = { file, bytes: read.bytes, problems: NO_PROBLEMS };
      this.images.set(file, state);
      const yaml = this.document(state, read, 'Image');
      if (yaml) state.entity = buildImage(yaml.value, yaml.refs);
      if (state.entity) this.names.Image.add(state.entity.name, { file, i: 0, entity: state.entity });
    }
  }

  /** Parses a document into `state`; returns it when it passed its schema. */
  private document(state: DocState<unknown>, read: FileRead, kind: EntityKind): YamlFile | undefined {
    if (read.refusal) {
      state.readProblem = fileProblem(state.file, read.refusal);
      return undefined;
    }
    const loaded = loadDocument(state.file, read.text ?? '', kind, this.limits, this.secretKeys);
    state.problems = loaded.problems.length > 0 ? loaded.problems : NO_PROBLEMS;
    return loaded.document?.valid ? loaded.document.yaml : undefined;
  }

  private remove(kind: EntityKind, file: string): void {
    removeSorted(this.files[kind], file);
    this.linked.delete(file);
    if (kind === 'Host') {
      const state = this.hosts.get(file);
      if (state) this.unindexHost(state);
      this.hosts.delete(file);
    } else {
      const states: Map<string, DocState<Profile | Image>> = kind === 'Profile' ? this.profiles : this.images;
      const entity = states.get(file)?.entity;
      if (entity) this.names[kind].remove(entity.name, file);
      states.delete(file);
    }
  }

  private buildHostEntity(state: HostState, value: unknown, refs: FieldRefs): void {
    const host = buildHost(value, refs);
    let read: FileRead | undefined;
    const tls = checkBmcTls(
      [host],
      (path) => {
        read = this.readCa(path);
        return read;
      },
      this.caVerdicts,
    );
    state.entity = host;
    state.tls = tls.length > 0 ? tls : NO_PROBLEMS;
    const ca = host.bmc.tls?.ca;
    if (read && ca !== undefined) state.ca = { path: ca, read, value, refs };
    else delete state.ca;
  }

  private indexHost(state: HostState): void {
    const host = state.entity;
    state.checks = null;
    if (!host) return;
    const { file } = state;
    this.names.Host.add(host.name, { file, i: 0, entity: host });
    macUses(host).forEach((use, i) => this.macs.add(use.mac, { file, i, mac: use.mac, use }));
    const ip = ipUse(host);
    if (ip) this.ips.add(host.ip, { file, i: 0, use: ip });
    let withRole = this.roles.get(host.role);
    if (!withRole) this.roles.set(host.role, (withRole = new Set()));
    withRole.add(file);
    if (host.wipe !== undefined) this.wiping.set(file, host);
    if (state.ca) this.caHosts.add(file);
  }

  private unindexHost(state: HostState): void {
    const host = state.entity;
    if (!host) return;
    const { file } = state;
    this.names.Host.remove(host.name, file);
    for (const mac of host.macs) this.macs.remove(mac, file);
    this.ips.remove(host.ip, file);
    const withRole = this.roles.get(host.role);
    withRole?.delete(file);
    if (withRole?.size === 0) this.roles.delete(host.role);
    this.wiping.delete(file);
    this.caHosts.delete(file);
  }

  /** A host whose CA file now reads differently is built again (a new object: what uses it sees the change). */
  private refreshCa(file: string): boolean {
    const state = this.hosts.get(file);
    const ca = state?.ca;
    if (!state || !ca) return false;
    const now = this.readCa(ca.path);
    if (now === ca.read || sameRead(now, ca.read)) return false;
    this.unindexHost(state);
    this.buildHostEntity(state, ca.value, ca.refs);
    this.indexHost(state);
    return true;
  }

  private readCa(path: string): FileRead {
    const known = this.caReadsNow.get(path);
    if (known) return known;
    const read = this.tree.read(path);
    const before = this.caReads.get(path);
    const kept = before && sameRead(read, before) ? before : read;
    this.caReadsNow.set(path, kept);
    return kept;
  }

  private buildProfileEntity(state: ProfileState): void {
    const yaml = state.yaml;
    if (!yaml) return;
    const reads: ProfileState['reads'] = [];
    state.entity = buildProfile(yaml.value, yaml.refs, (path) => {
      const read = this.tree.read(path);
      reads.push({ path, read });
      return read.text;
    });
    state.reads = reads;
  }

  /** Config templates are read again on every update (few, small, and possibly links): a changed one rebuilds its profile. */
  private refreshConfigs(): boolean {
    let changed = false;
    for (const state of this.profiles.values()) {
      if (!state.entity || state.reads.every((r) => sameRead(this.tree.read(r.path), r.read))) continue;
      this.names.Profile.remove(state.entity.name, state.file);
      this.buildProfileEntity(state);
      if (state.entity) this.names.Profile.add(state.entity.name, { file: state.file, i: 0, entity: state.entity });
      changed = true;
    }
    return changed;
  }

  private derive(): void {
    const profiles = new Map<string, Profile>();
    const brokenProfiles = new Set<string>();
    const configs = new Map<string, FileRead>();
    const valid: ProfileState[] = [];
    for (const file of this.files.Profile) {
      const state = this.profiles.get(file);
      const profile = state?.entity;
      if (!state || !profile) {
        brokenProfiles.add(stem(file));
        continue;
      }
      valid.push(state);
      for (const r of state.reads) if (!configs.has(r.path)) configs.set(r.path, r.read);
      if (this.names.Profile.get(profile.name)[0]?.file === file) profiles.set(profile.name, profile);
    }
    const images = new Map<string, Image>();
    const brokenImages = new Set<string>();
    for (const file of this.files.Image) {
      const image = this.images.get(file)?.entity;
      if (!image) brokenImages.add(stem(file));
      else if (this.names.Image.get(image.name)[0]?.file === file) images.set(image.name, image);
    }

    const templates: LabProblem[] = [];
    for (const { entity: profile, yaml } of valid) {
      if (!profile || !yaml) continue;
      const config = profile.boot.kind === 'image' ? profile.boot.config : undefined;
      const read = config?.file !== undefined ? configs.get(config.file) : undefined;
      if (config?.file !== undefined && read?.refusal) {
        templates.push(namedFileProblem(refOf(profile.refs, 'boot.config.file'), 'boot.config.file', config.file, read.refusal));
        continue;
      }
      if (config?.file !== undefined && read?.text === undefined) {
        templates.push(problem(refOf(profile.refs, 'boot.config.file'), 'missing-file', `boot.config.file "${config.file}" does not exist in the lab repository`));
        continue;
      }
      templates.push(...capProblems(checkProfileTemplates(profile, yaml, this.limits.maxProblems), this.limits.maxProblems, 'file'));
    }
    const bases = talosBaseFiles(valid.flatMap((v) => (v.entity ? [v.entity] : [])));
    for (const [file, profile] of bases) templates.push(...capProblems(checkTalosBase(profile, file, configs.get(file), this.limits), this.limits.maxProblems, 'file'));
    const configSecrets: LabProblem[] = [];
    for (const [file, read] of configs) if (read.text !== undefined && !bases.has(file)) configSecrets.push(...capProblems(checkTextSecrets(file, read.text), this.limits.maxProblems, 'file'));
    const imageRefs: LabProblem[] = [];
    for (const profile of profiles.values()) imageRefs.push(...checkProfileImage(profile, images, brokenImages));
    this.derived = { profiles, images, brokenProfiles, brokenImages, known: [...profiles.keys()].sort().join(','), templates, configSecrets, imageRefs };
  }

  /** Roles whose profile (or its absence, or the list of known ones a message names) differs from `before`. */
  private changedRoles(before: Derived | null): Iterable<string> {
    const now = this.derived;
    if (!before || !now) return this.roles.keys();
    const changed = new Set<string>();
    for (const name of [...before.profiles.keys(), ...now.profiles.keys(), ...before.brokenProfiles, ...now.brokenProfiles]) {
      if (before.profiles.get(name) !== now.profiles.get(name) || before.brokenProfiles.has(name) !== now.brokenProfiles.has(name)) changed.add(name);
    }
    if (before.known !== now.known) for (const role of this.roles.keys()) if (!now.profiles.has(role)) changed.add(role);
    return changed;
  }

  private hostChecks(state: HostState): readonly LabProblem[] {
    const host = state.entity;
    const derived = this.derived;
    if (!host || !derived) return NO_PROBLEMS;
    const network = this.site?.network;
    const problems = network ? checkHostAddress(network, host) : [];
    problems.push(...checkHostRole(host, derived.profiles, derived.brokenProfiles));
    return problems.length > 0 ? problems : NO_PROBLEMS;
  }

  /** Gathers the problems in the order a from-scratch load finds them, sorts them, and builds the lab if there are none. */
  private result(): LoadResult {
    const site = this.site;
    const derived = this.derived;
    if (!site || !derived) throw new NothingLoadedError(this.dir);
    const problems: LabProblem[] = [...this.pathProblems, ...site.problems, ...site.sections, ...(this.sops?.problems ?? [])];
    const hostStates = this.files.Host.map((file) => this.hosts.get(file)).filter((s): s is HostState => s !== undefined);
    for (const state of hostStates) if (state.problems.length > 0) problems.push(...state.problems);
    for (const file of this.files.Profile) problems.push(...(this.profiles.get(file)?.problems ?? []));
    for (const file of this.files.Image) problems.push(...(this.images.get(file)?.problems ?? []));
    for (const state of hostStates) if (state.tls.length > 0) problems.push(...state.tls);
    problems.push(...derived.templates, ...derived.configSecrets);
    for (const { kind, noun } of KIND_DIRS) problems.push(...this.duplicateNames(kind, noun));
    for (const mac of this.macs.duplicated) {
      const [first, ...later] = this.macs.get(mac);
      if (first) for (const use of later) problems.push(duplicateMac(mac, use.use, first.use));
    }
    for (const ip of this.ips.duplicated) {
      const [first, ...later] = this.ips.get(ip);
      if (first) for (const use of later) problems.push(duplicateIp(use.use, first.use));
    }
    problems.push(...site.addresses);
    for (const state of hostStates) if (state.checks && state.checks.length > 0) problems.push(...state.checks);
    problems.push(...derived.imageRefs);
    if (site.site) {
      const names = this.names.Host;
      problems.push(...checkOperations(site.site, { wiping: [...this.wiping.values()], has: (name) => names.has(name) }, derived.profiles, derived.brokenProfiles));
      problems.push(...checkDiscoveryImage(site.site, derived.images, derived.brokenImages));
    }
    problems.push(...this.listProblems);
    for (const { kind } of KIND_DIRS) {
      const states: Map<string, DocState<unknown>> = kind === 'Host' ? this.hosts : kind === 'Profile' ? this.profiles : this.images;
      for (const file of this.files[kind]) {
        const readProblem = states.get(file)?.readProblem;
        if (readProblem) problems.push(readProblem);
      }
    }
    problems.sort(compareProblems);

    if (problems.length > 0 || !site.site) return { lab: null, problems: capProblems(problems, this.limits.maxProblems, 'commit') };
    const hosts = new Map<string, Host>();
    for (const state of hostStates) {
      const host = state.entity;
      if (host && this.names.Host.get(host.name)[0]?.file === state.file) hosts.set(host.name, host);
    }
    return { lab: { site: site.site, hosts, profiles: derived.profiles, images: derived.images }, problems };
  }

  private duplicateNames(kind: EntityKind, noun: string): LabProblem[] {
    const problems: LabProblem[] = [];
    const index = this.names[kind];
    for (const name of index.duplicated) {
      const [first, ...later] = index.get(name);
      if (!first) continue;
      for (const use of later) {
        problems.push(problem(refOf(use.entity.refs, 'name'), 'duplicate-name', `${noun} "${name}" is already declared at ${formatRef(refOf(first.entity.refs, 'name'))}`));
      }
    }
    return problems;
  }
}

function sameRead(a: FileRead, b: FileRead): boolean {
  return a.text === b.text && a.refusal?.message === b.refusal?.message;
}
