// Installer progress reports (src/converge/installer-reports.ts): the strict parser against real payloads and
// bad ones, and the reducer over whole installs (payloads and their sources: test/fixtures/installer-reports.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { installerStateOf, parseInstallerReport, reduceInstallerReport, initialInstallerState, type InstallerReportIn, type InstallerState } from '../src/converge/installer-reports.ts';
import {
  CURTIN_DOC_FINISH_WITH_FILES, CURTIN_DOC_STAGE_START, CURTIN_DOC_START, OS_IMAGE_DISK_WARN, TESSIA_CRASH, TESSIA_REBOOT_20, TESSIA_REBOOT_21, TESSIA_STATUS_GET,
  TESSIA_WATCHDOG, cloudInitBoot, osImageWipe, subiquityGrubFailure, subiquityInstall,
} from './fixtures/installer-reports.ts';

const T0 = 1_767_225_600_000;

function inputs(bodies: string[], start = T0): InstallerReportIn[] {
  return bodies.map((body, i) => {
    const parsed = parseInstallerReport(body);
    assert.ok(parsed.ok, `${body}: ${parsed.ok ? '' : parsed.refusal}`);
    return { report: parsed.report, receivedAt: start + i * 1000 };
  });
}

test('real payloads parse: curtin docs, subiquity captures, cloud-init, the forseti OS image', () => {
  for (const body of [CURTIN_DOC_START, CURTIN_DOC_STAGE_START, TESSIA_STATUS_GET, TESSIA_REBOOT_20, TESSIA_REBOOT_21, TESSIA_CRASH, OS_IMAGE_DISK_WARN, ...cloudInitBoot(), ...osImageWipe()]) {
    const parsed = parseInstallerReport(body);
    assert.ok(parsed.ok, `${body}: ${parsed.ok ? '' : parsed.refusal}`);
  }
  const files = parseInstallerReport(CURTIN_DOC_FINISH_WITH_FILES);
  assert.ok(files.ok);
  assert.deepEqual(files.report, {
    name: 'cmd-install', description: 'curtin command install', eventType: 'finish', origin: 'curtin', timestamp: 1440688425.6038516, result: 'SUCCESS',
    files: [{ path: '/var/log/curtin/install.log', encodedLength: 26 }, { path: '/var/log/syslog', encodedLength: 26 }],
  });
  const cloud = parseInstallerReport(cloudInitBoot()[0] ?? '');
  assert.ok(cloud.ok);
  assert.equal(cloud.report.level, undefined, 'cloud-init sends no level');
  // Older curtin sent no timestamp (curtin/reporter/events.py before it had one).
  const old = parseInstallerReport('{"name": "cmd-install", "description": "curtin command install", "event_type": "start", "origin": "curtin"}');
  assert.ok(old.ok);
  assert.equal(old.report.timestamp, undefined);
  // Bytes, as the HTTP layer hands them over.
  assert.ok(parseInstallerReport(Buffer.from(CURTIN_DOC_START)).ok);
});

test('bad payloads are refused, saying why', () => {
  const table: Array<[string | Uint8Array, RegExp]> = [
    ['', /not JSON/],
    ['{"name": "x"', /not JSON/],
    [Buffer.from([0x7b, 0xff, 0x7d]), /not JSON in UTF-8/],
    ['[1, 2]', /not a JSON object/],
    ['null', /not a JSON object/],
    ['{"event_type": "start", "origin": "curtin"}', /"name" is missing/],
    ['{"name": "", "event_type": "start", "origin": "curtin"}', /"name" is missing/],
    [JSON.stringify({ name: 'a\nb', event_type: 'start', origin: 'curtin' }), /control character/],
    [JSON.stringify({ name: 'x'.repeat(513), event_type: 'start', origin: 'curtin' }), /longer than 512/],
    [TESSIA_WATCHDOG, /"event_type" is "log_dump", not start, finish or progress/],
    ['{"name": "x", "event_type": "start"}', /"origin" is missing/],
    ['{"name": "x", "event_type": "start", "origin": "curtin", "timestamp": "yesterday"}', /"timestamp" is not a number/],
    ['{"name": "x", "event_type": "start", "origin": "curtin", "timestamp": -5}', /"timestamp" is not a number/],
    ['{"name": "x", "event_type": "finish", "origin": "curtin"}', /"result" is undefined, not SUCCESS/],
    ['{"name": "x", "event_type": "finish", "origin": "curtin", "result": "OK"}', /"result" is "OK"/],
    ['{"name": "x", "event_type": "start", "origin": "curtin", "description": 7}', /"description" is not a string/],
    ['{"name": "x", "event_type": "start", "origin": "curtin", "level": "INFORMATIONAL-VERBOSE"}', /"level" is not a short string/],
    ['{"name": "x", "event_type": "finish", "origin": "curtin", "result": "SUCCESS", "files": {}}', /"files" is not a list/],
    ['{"name": "x", "event_type": "finish", "origin": "curtin", "result": "SUCCESS", "files": [{"content": "AA=="}]}', /"path" is not a path/],
    ['{"name": "x", "event_type": "finish", "origin": "curtin", "result": "SUCCESS", "files": [{"path": "/a", "content": 1}]}', /content of \/a is not a string/],
    [JSON.stringify({ name: 'x', event_type: 'finish', origin: 'curtin', result: 'SUCCESS', files: Array.from({ length: 33 }, (_, i) => ({ path: `/f${i}` })) }), /more than 32 files/],
  ];
  for (const [body, why] of table) {
    const parsed = parseInstallerReport(body);
    assert.equal(parsed.ok, false, String(body));
    if (!parsed.ok) {
      assert.match(parsed.refusal, /^installer report refused: /);
      assert.match(parsed.refusal, why, String(body));
    }
  }
  const big = parseInstallerReport(JSON.stringify({ name: 'x', event_type: 'start', origin: 'curtin', description: 'd'.repeat(2000) }), { maxBytes: 1000, maxNameLength: 512, maxFiles: 32 });
  assert.equal(big.ok, false);
  if (!big.ok) assert.match(big.refusal, /more than 1000/);
  const long = parseInstallerReport(JSON.stringify({ name: 'x', event_type: 'start', origin: 'curtin', description: 'd'.repeat(5000) }));
  assert.ok(long.ok);
  assert.equal(long.report.description.length, 2048, 'a long description is cut, not refused');
});

const stepNames = (s: InstallerState): string[] => s.steps.map((st) => st.name);

test('a subiquity autoinstall: top-level pairs are steps with times and results, API chatter none; cloud-init\'s modules-final after it converges', () => {
  const install = installerStateOf(inputs(subiquityInstall()));
  assert.equal(install.status, 'in-progress');
  assert.deepEqual(stepNames(install), [
    'subiquity/Early/run', 'subiquity/Install/install', 'subiquity/Late/run', 'subiquity/Shutdown/copy_logs_to_target', 'subiquity/Shutdown/shutdown',
  ]);
  const installStep = install.steps[1];
  assert.equal(installStep?.result, 'SUCCESS');
  assert.ok(installStep?.finishedAt !== undefined && installStep.finishedAt > installStep.at);
  assert.ok(install.installFinishedAt !== undefined);
  assert.equal(install.current?.name, 'subiquity/Shutdown/shutdown', 'the reboot cuts off its finish: the step stays current');
  const booted = installerStateOf(inputs(cloudInitBoot(), T0 + 3_600_000), { finalNeedsInstall: true }, install);
  assert.equal(booted.status, 'converged');
  assert.equal(booted.convergedAt, T0 + 3_600_000 + 9_000, 'the modules-final finish converges');
  assert.deepEqual(stepNames(booted).slice(-4), ['init-local', 'init-network', 'modules-config', 'modules-final']);
});

test('while a top-level step runs, its sub-events are its detail', () => {
  const bodies = subiquityInstall();
  const upTo = bodies.findIndex((b) => b.includes('stage-extract') && b.includes('"start"'));
  const state = installerStateOf(inputs(bodies.slice(0, upTo + 1)));
  assert.equal(state.current?.name, 'subiquity/Install/install');
  assert.equal(state.current?.detail, 'curtin_install/run_curtin_step/cmd-install/stage-extract: writing install sources to disk');
});

test('cloud-init\'s modules-final before the installer finished (the live installer\'s own cloud-init) does not converge', () => {
  const state = installerStateOf(inputs(cloudInitBoot()));
  assert.equal(state.status, 'in-progress');
  assert.equal(installerStateOf(inputs(cloudInitBoot()), { finalNeedsInstall: false }).status, 'converged', 'an endpoint only the installed system reports to');
  assert.equal(installerStateOf(inputs([...subiquityInstall(), ...cloudInitBoot(undefined, 'FAIL')])).status, 'failed');
});

test('a FAIL fails the host at once, naming the first (innermost) failing event; what follows changes nothing', () => {
  const events = inputs(subiquityGrubFailure());
  const firstFail = events.findIndex((e) => e.report.result === 'FAIL');
  const atFail = installerStateOf(events.slice(0, firstFail + 1));
  assert.equal(atFail.status, 'failed');
  assert.equal(atFail.failure?.step, 'subiquity/Install/install/curtin_install/run_curtin_step/cmd-install/stage-curthooks/builtin/cmd-curthooks/configuring-bootloader/install-grub');
  assert.match(atFail.failure?.reason ?? '', /install-grub failed: installing grub to target devices$/);
  assert.equal(atFail.failure?.at, events[firstFail]?.receivedAt);
  const all = installerStateOf(events);
  assert.deepEqual(all.failure, atFail.failure, 'the parents\' FAIL and the error-commands do not rename the failure');
});

test('subiquity\'s crash report fails the host even though its result says SUCCESS', () => {
  const state = installerStateOf(inputs([TESSIA_STATUS_GET, TESSIA_CRASH]));
  assert.equal(state.status, 'failed');
  assert.equal(state.failure?.step, 'subiquity/Error/1611592891.712457657.ui/add_info');
  assert.match(state.failure?.reason ?? '', /written to \/var\/crash\/1611592891.712457657.ui.crash/);
});

test('standalone curtin (docs): cmd-install with its stages; the finish without a start still counts', () => {
  const state = installerStateOf(inputs([CURTIN_DOC_START, CURTIN_DOC_STAGE_START, CURTIN_DOC_FINISH_WITH_FILES]));
  assert.deepEqual(stepNames(state), ['cmd-install']);
  assert.equal(state.steps[0]?.result, 'SUCCESS');
  assert.ok(state.installFinishedAt !== undefined);
  const orphan = installerStateOf(inputs([CURTIN_DOC_FINISH_WITH_FILES]));
  assert.deepEqual(stepNames(orphan), ['cmd-install']);
  assert.equal(orphan.steps[0]?.finishedAt, T0);
});

test('the forseti OS image: a wipe that succeeds (or only warns) converges; one that fails fails naming the disk', () => {
  const ok = installerStateOf(inputs(osImageWipe('SUCCESS')));
  assert.equal(ok.status, 'converged');
  assert.deepEqual(stepNames(ok), ['forseti-wipe']);
  const warned = installerStateOf(inputs([...osImageWipe('WARN').slice(0, -1), OS_IMAGE_DISK_WARN, ...osImageWipe('WARN').slice(-1)]));
  assert.equal(warned.status, 'converged');
  assert.deepEqual(warned.warnings.map((w) => w.name), ['forseti-wipe/disk/sda', 'forseti-wipe']);
  const failed = installerStateOf(inputs(osImageWipe('FAIL')));
  assert.equal(failed.status, 'failed');
  assert.equal(failed.failure?.step, 'forseti-wipe/disk/vdb');
  assert.match(failed.failure?.reason ?? '', /zeroing failed at byte 33554432/);
  // Progress reports are the current step's detail.
  const midway = installerStateOf(inputs(osImageWipe('SUCCESS').slice(0, 3)));
  assert.equal(midway.current?.detail, 'disk/vda: zeroed 33554432 of 67108864 bytes');
});

test('a resent report changes nothing; a report stream that stops keeps its step', () => {
  const events = inputs(subiquityInstall());
  const once = installerStateOf(events);
  const again = installerStateOf(events.map((e) => ({ ...e, receivedAt: e.receivedAt + 500 })), { finalNeedsInstall: true }, once);
  assert.deepEqual({ ...again, seen: [] }, { ...once, seen: [] });
  const last = events.at(-1);
  assert.ok(last);
  assert.equal(reduceInstallerReport(once, last, { finalNeedsInstall: true }), once);
  assert.equal(installerStateOf([], { finalNeedsInstall: true }, once), once);
  assert.equal(initialInstallerState().status, 'waiting');
});
