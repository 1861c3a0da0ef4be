// site.yaml's `discovery:` section and agent.yaml's `discovery.forge`: defaults, every problem at a dotted path the
// model can place at file:line (site.yaml) or name (agent.yaml), and the parser and schemas/site-discovery.schema.json
// agreeing on what they both check. The forge is the operator's: site.yaml naming one is refused.
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
import { DEFAULT_DISCOVERY, parseDiscoverySettings } from '../src/model/site-discovery.ts';
import { forgeConfigOf, parseForgeSettings } from '../src/discover/forge-settings.ts';
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

  it('a whole section', () => {
    const raw = { enabled: true, image: 'forseti-os', afterReport: 'stay', namePattern: 'new-{serial}', bmcCredential: 'ilo-discovered', rateLimit: { proposals: 3, intervalSeconds: 600 } };
    assert.deepEqual(parseDiscoverySettings(raw), {
      settings: { enabled: true, image: 'forseti-os', afterReport: 'stay', namePattern: 'new-{serial}', fallbackPattern: 'node-{mac}', bmcCredential: 'ilo-discovered', rateLimit: { proposals: 3, intervalSeconds: 600 } },
      problems: [],
    });
  });

  /** `beyondSchema`: a check only the parser makes (the lab's images, placeholders, plain http, a forge's own rules). */
  const table: Array<{ what: string; raw: unknown; beyondSchema?: true; problems: Array<[string, RegExp]> }> = [
    { what: 'not a mapping', raw: 'yes', problems: [['discovery', /must be a mapping/]] },
    { what: 'an unknown key', raw: { enable: true }, problems: [['discovery.enable', /enable is not a discovery setting \(known: enabled, image/]] },
    { what: 'enabled without an image', raw: { enabled: true }, problems: [['discovery.image', /discovery is enabled but names no image/]] },
    { what: 'afterReport misspelt', raw: { afterReport: 'shutdown' }, problems: [['discovery.afterReport', /poweroff or stay/]] },
    { what: 'a name placeholder discovery does not know', beyondSchema: true, raw: { namePattern: '{enclosure}-{bay:02}' }, problems: [['discovery.namePattern', /namePattern: unknown placeholder \{enclosure\} \(known: \{serial\} \{model\} \{manufacturer\} \{mac\}\)/]] },
    { what: 'a secret where a credential name goes', raw: { bmcCredential: 'p@ss word' }, problems: [['discovery.bmcCredential', /NAME of a credential/]] },
    { what: 'a forge in site.yaml: the lab never chooses where a token is sent', raw: { forge: { type: 'gitea', api: 'https://evil.example/api/v1', repository: 'o/r', credential: 'gitea-token' } }, problems: [['discovery.forge', /not a lab setting: .*agent\.yaml discovery\.forge/]] },
    { what: 'a rate limit of zero, and too short an interval', raw: { rateLimit: { proposals: 0, intervalSeconds: 5 } }, problems: [['discovery.rateLimit.proposals', /from 1 to 1000/], ['discovery.rateLimit.intervalSeconds', /from 60 to 604800/]] },
  ];
  for (const row of table) {
    it(row.what, () => {
      const { problems } = parseDiscoverySettings(row.raw);
      assert.deepEqual(problems.map((p) => p.path), row.problems.map(([path]) => path), JSON.stringify(problems));
      problems.forEach((p, i) => assert.match(p.message, row.problems[i]![1]));
      assert.ok(problems.every((p) => p.code === 'discovery'));
    });
  }

  it('agrees with schemas/site-discovery.schema.json wherever the schema can tell', () => {
    const rows: Array<{ raw: unknown; schemaOnly?: boolean }> = [
      ...table.map((r) => ({ raw: r.raw, schemaOnly: r.beyondSchema === true })),
      { raw: {} },
      { raw: { enabled: false } },
      { raw: { enabled: true, image: 'forseti-os', afterReport: 'stay', rateLimit: { proposals: 2 } } },
    ];
    for (const { raw, schemaOnly } of rows) {
      const parserOk = parseDiscoverySettings(raw).problems.length === 0;
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
      '  afterReport: shutdown',
      '',
    ].join('\n');
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines });
    const { problems } = parseDiscoverySettings((doc.toJS() as { discovery: unknown }).discovery);
    const at = (path: string): string => {
      let node = doc.contents as Node | null;
      for (const key of path.split('.')) {
        if (isMap(node)) node = node.get(key, true) as Node | null;
        else if (isSeq(node)) node = node.get(Number(key), true) as Node | null;
      }
      return `site.yaml:${lines.linePos(node?.range?.[0] ?? 0).line}`;
    };
    assert.deepEqual(problems.map((p) => `${at(p.path)}: ${p.path}`), ['site.yaml:9: discovery.afterReport', 'site.yaml:8: discovery.rateLimit.proposals']);
  });

});

describe('parseForgeSettings (agent.yaml discovery.forge)', () => {
  it('the forge\'s default API and labels', () => {
    assert.deepEqual(parseForgeSettings({ type: 'github', repository: 'lab-admins/lab', credential: 'github-token' }), { forge: { type: 'github', api: 'https://api.github.com', repository: 'lab-admins/lab', credential: 'github-token', labels: ['discovered'] }, problems: [] });
    assert.deepEqual(parseForgeSettings({ type: 'gitlab', repository: 'infra/labs/asgard', credential: 'gl', labels: ['hw', 'new machine'] }).forge, { type: 'gitlab', api: 'https://gitlab.com/api/v4', repository: 'infra/labs/asgard', credential: 'gl', labels: ['hw', 'new machine'] });
    assert.equal(parseForgeSettings({ type: 'gitea', api: 'https://git.lab.example/api/v1/', repository: 'ops/lab', credential: 'gitea' }).forge?.api, 'https://git.lab.example/api/v1');
    assert.equal(parseForgeSettings({ type: 'gitea', api: 'http://127.0.0.1:3000/api/v1', repository: 'ops/lab', credential: 'g' }).problems.length, 0, 'http to this machine');
  });

  const table: Array<{ what: string; raw: unknown; problems: RegExp[] }> = [
    { what: 'not a mapping', raw: 'gitea', problems: [/^discovery\.forge: must be a mapping/] },
    { what: 'no type, repository or credential', raw: {}, problems: [/^discovery\.forge\.type: must be github, gitea, gitlab/, /^discovery\.forge\.repository: must be OWNER\/REPO/, /^discovery\.forge\.credential: must be the NAME of the credential/, /^discovery\.forge\.api: is required/] },
    { what: 'gitea without an API root', raw: { type: 'gitea', repository: 'ops/lab', credential: 'g' }, problems: [/^discovery\.forge\.api: is required for gitea/] },
    { what: 'a token in the API URL', raw: { type: 'github', api: 'https://x:ghp_secret@api.github.com', repository: 'a/b', credential: 'g' }, problems: [/api: must not carry credentials/] },
    { what: 'a token in the query', raw: { type: 'gitlab', api: 'https://gitlab.example/api/v4?private_token=x', repository: 'a/b', credential: 'g' }, problems: [/api: must not carry credentials/] },
    { what: 'http to another machine', raw: { type: 'gitea', api: 'http://git.lab.example/api/v1', repository: 'ops/lab', credential: 'g' }, problems: [/api: must be https: the token would cross the network in clear/] },
    { what: 'a GitHub repository with three parts', raw: { type: 'github', repository: 'a/b/c', credential: 'g' }, problems: [/repository: must be OWNER\/REPO/] },
    { what: 'labels with a comma, a line break, twice', raw: { type: 'gitlab', repository: 'a/b', credential: 'g', labels: ['a,b', 'x\ny', 'ok', 'ok'] }, problems: [/labels\.0: .*without commas/, /labels\.1: .*control characters/, /labels\.3: label ok is listed twice/] },
  ];
  for (const row of table) {
    it(row.what, () => {
      const { forge, problems } = parseForgeSettings(row.raw);
      assert.equal(forge, undefined, 'a forge with a problem is not configured');
      assert.equal(problems.length, row.problems.length, JSON.stringify(problems));
      problems.forEach((p, i) => assert.match(p, row.problems[i]!));
    });
  }

  it('the forge token is a credential the agent resolves (its secrets file, the environment), never a value in agent.yaml', async () => {
    const fake = await startFakeForge('gitea');
    const dir = await mkdtemp(join(tmpdir(), 'forseti-discovery-secrets-'));
    try {
      const file = join(dir, 'secrets.yaml');
      await writeFile(file, `gitea-token: {username: forseti, password: ${fake.token}}\n`);
      const { forge } = parseForgeSettings({ type: 'gitea', api: fake.api, repository: 'lab-admins/lab', credential: 'gitea-token' });
      const config = forgeConfigOf(forge!, await Secrets.load(file, {}));
      assert.equal(config.token, fake.token);
      const result = await createForgeClient(config).openPullRequest({ head: 'forseti/discovered/52-54-00-77-02-02', base: 'main', title: 't', body: 'b' });
      assert.equal(result.kind, 'opened');
      const fromEnv = forgeConfigOf(forge!, await Secrets.load(undefined, { FORSETI_CREDENTIAL_GITEA_TOKEN_USERNAME: 'x', FORSETI_CREDENTIAL_GITEA_TOKEN_PASSWORD: 'env-token' }));
      assert.equal(fromEnv.token, 'env-token');
      assert.throws(() => forgeConfigOf(forge!, { resolve: (name) => { throw new CredentialMissingError(name); } }), /credential "gitea-token" is not in the secrets file/);
    } finally {
      await fake.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
