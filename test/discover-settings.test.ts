// site.yaml's `discovery:` section: defaults, every problem at a dotted path the model can place at file:line, and the
// parser and schemas/site-discovery.schema.json agreeing on what they both check.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { LineCounter, parseDocument, isMap, isSeq } from 'yaml';
import type { Node } from 'yaml';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CredentialMissingError, Secrets } from '../src/secrets/secrets.ts';
import { DEFAULT_DISCOVERY, forgeConfigOf, parseDiscoverySettings } from '../src/discover/discovery-settings.ts';
import { createForgeClient } from '../src/source/forge/index.ts';
import { startFakeForge } from './fixtures/forge/forge-server.ts';

const schema = JSON.parse(readFileSync(new URL('../schemas/site-discovery.schema.json', import.meta.url), 'utf8')) as object;
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
ajv.addVocabulary(['patternErrorMessage']);
const validate = ajv.compile(schema);

describe('parseDiscoverySettings', () => {
  it('absent: discovery off, the defaults', () => {
    assert.deepEqual(parseDiscoverySettings(undefined), { settings: DEFAULT_DISCOVERY, problems: [] });
    assert.deepEqual(DEFAULT_DISCOVERY, { enabled: false, afterReport: 'poweroff', namePattern: '{serial}', fallbackPattern: 'node-{mac}', rateLimit: { proposals: 10, intervalSeconds: 3600 } });
  });

  it('a whole section, with the forge\'s default API and labels', () => {
    const raw = { enabled: true, image: 'forseti-os', afterReport: 'stay', namePattern: 'new-{serial}', bmcCredential: 'ilo-discovered', rateLimit: { proposals: 3, intervalSeconds: 600 }, forge: { type: 'github', repository: 'lab-admins/lab', credential: 'github-token' } };
    assert.deepEqual(parseDiscoverySettings(raw, { images: new Set(['forseti-os', 'talos']) }), {
      settings: {
        enabled: true,
        image: 'forseti-os',
        afterReport: 'stay',
        namePattern: 'new-{serial}',
        fallbackPattern: 'node-{mac}',
        bmcCredential: 'ilo-discovered',
        rateLimit: { proposals: 3, intervalSeconds: 600 },
        forge: { type: 'github', api: 'https://api.github.com', repository: 'lab-admins/lab', credential: 'github-token', labels: ['discovered'] },
      },
      problems: [],
    });
    const gitlab = parseDiscoverySettings({ forge: { type: 'gitlab', repository: 'infra/labs/asgard', credential: 'gl', labels: ['hw', 'new machine'] } });
    assert.deepEqual(gitlab.settings.forge, { type: 'gitlab', api: 'https://gitlab.com/api/v4', repository: 'infra/labs/asgard', credential: 'gl', labels: ['hw', 'new machine'] });
    const gitea = parseDiscoverySettings({ forge: { type: 'gitea', api: 'https://git.lab.example/api/v1/', repository: 'ops/lab', credential: 'gitea' } });
    assert.equal(gitea.settings.forge?.api, 'https://git.lab.example/api/v1');
    assert.equal(parseDiscoverySettings({ forge: { type: 'gitea', api: 'http://127.0.0.1:3000/api/v1', repository: 'ops/lab', credential: 'g' } }).problems.length, 0, 'http to this machine');
  });

  /** `beyondSchema`: a check only the parser makes (the lab's images, placeholders, plain http, a forge's own rules). */
  const table: Array<{ what: string; raw: unknown; images?: string[]; beyondSchema?: true; problems: Array<[string, RegExp]> }> = [
    { what: 'not a mapping', raw: 'yes', problems: [['discovery', /must be a mapping/]] },
    { what: 'an unknown key', raw: { enable: true }, problems: [['discovery.enable', /enable is not a discovery setting \(known: enabled, image/]] },
    { what: 'enabled without an image', raw: { enabled: true }, problems: [['discovery.image', /discovery is enabled but names no image/]] },
    { what: 'an image the lab does not have', beyondSchema: true, raw: { enabled: true, image: 'inventory' }, images: ['wipe', 'talos'], problems: [['discovery.image', /no image inventory in images\//]] },
    { what: 'afterReport misspelt', raw: { afterReport: 'shutdown' }, problems: [['discovery.afterReport', /poweroff or stay/]] },
    { what: 'a name placeholder discovery does not know', beyondSchema: true, raw: { namePattern: '{enclosure}-{bay:02}' }, problems: [['discovery.namePattern', /namePattern: unknown placeholder \{enclosure\} \(known: \{serial\} \{model\} \{manufacturer\} \{mac\}\)/]] },
    { what: 'a secret where a credential name goes', raw: { bmcCredential: 'p@ss word' }, problems: [['discovery.bmcCredential', /NAME of a credential/]] },
    { what: 'a rate limit of zero, and too short an interval', raw: { rateLimit: { proposals: 0, intervalSeconds: 5 } }, problems: [['discovery.rateLimit.proposals', /from 1 to 1000/], ['discovery.rateLimit.intervalSeconds', /from 60 to 604800/]] },
    { what: 'a forge without type, repository or credential', raw: { forge: {} }, problems: [['discovery.forge.type', /github, gitea, gitlab/], ['discovery.forge.repository', /OWNER\/REPO/], ['discovery.forge.credential', /NAME of the credential/], ['discovery.forge.api', /required/]] },
    { what: 'gitea without an API root', beyondSchema: true, raw: { forge: { type: 'gitea', repository: 'ops/lab', credential: 'g' } }, problems: [['discovery.forge.api', /forge\.api is required for gitea/]] },
    { what: 'a token in the API URL', raw: { forge: { type: 'github', api: 'https://x:ghp_secret@api.github.com', repository: 'a/b', credential: 'g' } }, problems: [['discovery.forge.api', /must not carry credentials/]] },
    { what: 'a token in the query', raw: { forge: { type: 'gitlab', api: 'https://gitlab.example/api/v4?private_token=x', repository: 'a/b', credential: 'g' } }, problems: [['discovery.forge.api', /must not carry credentials/]] },
    { what: 'http to another machine', beyondSchema: true, raw: { forge: { type: 'gitea', api: 'http://git.lab.example/api/v1', repository: 'ops/lab', credential: 'g' } }, problems: [['discovery.forge.api', /must be https: the token would cross the network in clear/]] },
    { what: 'a GitHub repository with three parts', beyondSchema: true, raw: { forge: { type: 'github', repository: 'a/b/c', credential: 'g' } }, problems: [['discovery.forge.repository', /OWNER\/REPO/]] },
    { what: 'labels with a comma, a line break, twice', raw: { forge: { type: 'gitlab', repository: 'a/b', credential: 'g', labels: ['a,b', 'x\ny', 'ok', 'ok'] } }, problems: [['discovery.forge.labels.0', /without commas/], ['discovery.forge.labels.1', /control characters/], ['discovery.forge.labels.3', /listed twice/]] },
  ];
  for (const row of table) {
    it(row.what, () => {
      const { problems, settings } = parseDiscoverySettings(row.raw, row.images ? { images: new Set(row.images) } : {});
      assert.deepEqual(problems.map((p) => p.path), row.problems.map(([path]) => path), JSON.stringify(problems));
      problems.forEach((p, i) => assert.match(p.message, row.problems[i]![1]));
      assert.ok(problems.every((p) => p.code === 'discovery'));
      if (problems.some((p) => p.path.startsWith('discovery.forge'))) assert.equal(settings.forge, undefined, 'a forge with a problem is not configured');
    });
  }

  it('agrees with schemas/site-discovery.schema.json wherever the schema can tell', () => {
    const rows: Array<{ raw: unknown; images?: string[]; schemaOnly?: boolean }> = [
      ...table.map((r) => ({ raw: r.raw, ...(r.images ? { images: r.images } : {}), schemaOnly: r.beyondSchema === true })),
      { raw: {} },
      { raw: { enabled: false } },
      { raw: { enabled: true, image: 'forseti-os', forge: { type: 'gitea', api: 'https://g.example/api/v1', repository: 'o/r', credential: 'c', labels: ['x'] } } },
    ];
    for (const { raw, images, schemaOnly } of rows) {
      const parserOk = parseDiscoverySettings(raw, images ? { images: new Set(images) } : {}).problems.length === 0;
      const schemaOk = validate(raw);
      if (schemaOnly) assert.ok(!parserOk && schemaOk, `${JSON.stringify(raw)}: a check beyond the schema`);
      else assert.equal(parserOk, schemaOk, `${JSON.stringify(raw)}: parser ${parserOk}, schema ${schemaOk} ${JSON.stringify(validate.errors)}`);
    }
  });

  it('each problem\'s path finds its line in site.yaml, as the model places drift and alerts problems', () => {
    const text = [
      'apiVersion: forseti/v1',
      'kind: Site',
      'name: homelab',
      'discovery:',
      '  enabled: true',
      '  image: forseti-os',
      '  rateLimit:',
      '    proposals: 0',
      '  forge:',
      '    type: gitea',
      '    api: http://git.lab.example/api/v1',
      '    repository: ops/lab',
      '    credential: gitea-token',
      '    labels: [discovered, "a,b"]',
      '',
    ].join('\n');
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines });
    const { problems } = parseDiscoverySettings((doc.toJS() as { discovery: unknown }).discovery, { images: new Set(['forseti-os']) });
    const at = (path: string): string => {
      let node = doc.contents as Node | null;
      for (const key of path.split('.')) {
        if (isMap(node)) node = node.get(key, true) as Node | null;
        else if (isSeq(node)) node = node.get(Number(key), true) as Node | null;
      }
      return `site.yaml:${lines.linePos(node?.range?.[0] ?? 0).line}`;
    };
    assert.deepEqual(problems.map((p) => `${at(p.path)}: ${p.path}`), ['site.yaml:8: discovery.rateLimit.proposals', 'site.yaml:11: discovery.forge.api', 'site.yaml:14: discovery.forge.labels.1']);
  });

  it('the forge token is a credential the agent resolves (its secrets file, the environment), never a value in site.yaml', async () => {
    const fake = await startFakeForge('gitea');
    const dir = await mkdtemp(join(tmpdir(), 'forseti-discovery-secrets-'));
    try {
      const file = join(dir, 'secrets.yaml');
      await writeFile(file, `gitea-token: {username: forseti, password: ${fake.token}}\n`);
      const { settings } = parseDiscoverySettings({ forge: { type: 'gitea', api: fake.api, repository: 'lab-admins/lab', credential: 'gitea-token' } });
      const config = forgeConfigOf(settings.forge!, await Secrets.load(file, {}));
      assert.equal(config.token, fake.token);
      const result = await createForgeClient(config).openPullRequest({ head: 'forseti/discovered/52-54-00-77-02-02', base: 'main', title: 't', body: 'b' });
      assert.equal(result.kind, 'opened');
      const fromEnv = forgeConfigOf(settings.forge!, await Secrets.load(undefined, { FORSETI_CREDENTIAL_GITEA_TOKEN_USERNAME: 'x', FORSETI_CREDENTIAL_GITEA_TOKEN_PASSWORD: 'env-token' }));
      assert.equal(fromEnv.token, 'env-token');
      assert.throws(() => forgeConfigOf(settings.forge!, { resolve: (name) => { throw new CredentialMissingError(name); } }), /credential "gitea-token" is not in the secrets file/);
    } finally {
      await fake.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
