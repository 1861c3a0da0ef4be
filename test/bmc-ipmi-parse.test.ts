import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bootdevRequest, overrideFromFlags, overrideMismatch } from '../src/bmc/ipmi-boot-override.ts';
import { bootdevCommand } from '../src/bmc/ipmi/ipmitool.ts';
import { parseBootFlags, parseMcInfo, parsePowerReading, parsePowerStatus } from '../src/bmc/ipmi/parse.ts';
import { classifyOutput, ipmitoolArgs, ipmitoolEnv, sessionRefused } from '../src/bmc/ipmi/run.ts';

// ipmitool 1.8.19's wording; the second block is what a BMC that keeps all flags reports after
// `chassis bootdev pxe options=efiboot,persistent`.
const BOOTPARAM_SIM = `Boot parameter version: 1
Boot parameter 5 is valid/unlocked
Boot parameter data: 0008000000
 Boot Flags :
   - Boot Flag Invalid
   - Options apply to only next boot
   - BIOS PC Compatible (legacy) boot 
   - Boot Device Selector : Force Boot from default Hard-Drive
   - BIOS verbosity : System Default
`;
const BOOTPARAM_EFI_PERSISTENT = `Boot parameter version: 1
Boot parameter 5 is valid/unlocked
Boot parameter data: e004000000
 Boot Flags :
   - Boot Flag Valid
   - Options apply to all future boots
   - BIOS EFI boot 
   - Boot Device Selector : Force PXE
   - BIOS verbosity : System Default
`;

describe('ipmitool output parsers', () => {
  it('reads chassis power', () => {
    assert.equal(parsePowerStatus('Chassis Power is on\n'), 'on');
    assert.equal(parsePowerStatus('Chassis Power is off\n'), 'off');
    assert.equal(parsePowerStatus('something else'), 'unknown');
  });

  it('reads boot parameter 5', () => {
    assert.deepEqual(parseBootFlags(BOOTPARAM_SIM), { valid: false, persistent: false, efi: false, selector: 'disk', selectorText: 'Force Boot from default Hard-Drive' });
    assert.deepEqual(parseBootFlags(BOOTPARAM_EFI_PERSISTENT), { valid: true, persistent: true, efi: true, selector: 'pxe', selectorText: 'Force PXE' });
    assert.equal(parseBootFlags('Boot parameter version: 1\n'), null);
  });

  it('reads mc info and DCMI power', () => {
    const mc = parseMcInfo('Device ID                 : 0\nFirmware Revision         : 9.08\nManufacturer ID           : 4753\nManufacturer Name         : MontaVista Software, Inc.\nAux Firmware Rev Info     : \n    0x00\n');
    assert.deepEqual(mc, { manufacturerId: 4753, manufacturerName: 'MontaVista Software, Inc.', productName: null, firmwareRevision: '9.08' });
    assert.equal(parsePowerReading('    Instantaneous power reading:                   187 Watts\n'), 187);
    assert.equal(parsePowerReading(''), null);
  });
});

describe('ipmitool invocation', () => {
  const conn = { address: '192.0.2.7', port: 6230, username: 'admin', password: 'S3cret-pw' };

  it('passes the password through the environment (-E), never in argv', () => {
    const args = ipmitoolArgs(conn, ['chassis', 'power', 'status']);
    assert.ok(args.includes('-E'));
    assert.ok(!args.includes('-P'));
    assert.ok(!args.some((a) => a.includes(conn.password)));
    assert.deepEqual(args.slice(0, 4), ['-I', 'lanplus', '-C', '3']);
    assert.equal(ipmitoolEnv(conn, {}).IPMI_PASSWORD, conn.password);
  });

  it('spells chassis bootdev options', () => {
    assert.deepEqual(bootdevCommand({ device: 'pxe', persistent: false, efi: false }), ['chassis', 'bootdev', 'pxe']);
    assert.deepEqual(bootdevCommand({ device: 'disk', persistent: true, efi: true }), ['chassis', 'bootdev', 'disk', 'options=efiboot,persistent']);
    assert.deepEqual(bootdevCommand({ device: 'none', persistent: true, efi: true }), ['chassis', 'bootdev', 'none']);
  });

  it('does not trust exit code 0 alone', () => {
    const failedBootdev = classifyOutput({ stdout: '', stderr: 'Set Chassis Boot Parameter 5 failed: Unspecified error\n' }, 0);
    assert.equal(failedBootdev.kind, 'command-failed');
    assert.equal(classifyOutput({ stdout: BOOTPARAM_SIM, stderr: '' }, 0).kind, 'ok');
    assert.equal(classifyOutput({ stdout: '', stderr: 'Error: Unable to establish IPMI v2 / RMCP+ session\n' }, 1).kind, 'session-failed');
  });

  it('tells a refused session from a silent BMC in verbose output', () => {
    assert.equal(sessionRefused('> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session'), 'RAKP 2 HMAC is invalid');
    assert.ok(sessionRefused('RAKP 2 message indicates an error : unauthorized name'));
    assert.equal(sessionRefused('Get Auth Capabilities error\nError issuing Get Channel Authentication Capabilities request'), null);
  });
});

describe('boot override read-back', () => {
  const efiPersistentPxe = parseBootFlags(BOOTPARAM_EFI_PERSISTENT)!;

  it('takes the mode from the target firmware unless the override names one', () => {
    assert.equal(bootdevRequest({ device: 'pxe', persistent: false }, 'uefi').efi, true);
    assert.equal(bootdevRequest({ device: 'pxe', persistent: false, mode: 'bios' }, 'uefi').efi, false);
  });

  it('on a BMC that keeps the flags, checks device, persistence and EFI mode', () => {
    assert.deepEqual(overrideFromFlags(efiPersistentPxe, 'kept'), { device: 'pxe', persistent: true, mode: 'uefi' });
    assert.equal(overrideMismatch({ device: 'pxe', persistent: true, efi: true }, efiPersistentPxe, 'kept'), null);
    assert.match(overrideMismatch({ device: 'pxe', persistent: true, efi: false }, efiPersistentPxe, 'kept') ?? '', /legacy|EFI/);
    assert.ok(overrideMismatch({ device: 'pxe', persistent: false, efi: true }, efiPersistentPxe, 'kept'));
    assert.ok(overrideMismatch({ device: 'disk', persistent: true, efi: true }, efiPersistentPxe, 'kept'));
  });

  it('treats an invalid boot flag as no override', () => {
    const sim = parseBootFlags(BOOTPARAM_SIM)!;
    assert.equal(overrideFromFlags(sim, 'kept'), null);
    assert.deepEqual(overrideFromFlags(sim, 'device-only'), { device: 'disk', persistent: true });
  });
});
