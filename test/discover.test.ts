// `forseti discover oa|redfish|ipmi`: an enclosure's blades or a BMC's systems become proposed host files that
// validate with the lab, written into the lab, to a directory, or committed on a new branch (never on main).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseServerInfo, parseServerList } from '../src/bmc/oa/parse.ts';

describe('OA parsers for discovery', () => {
  it('SHOW SERVER LIST: columns found by heading, [Absent] bays, the iLO address, power', () => {
    const list = parseServerList(
      [
        '',
        'Bay iLO Name                      iLO IP Address  Status   Power   UID Partner',
        '--- ----------------------------- --------------- -------- ------- --- -------',
        '  1 ILOCZ3401A001                 10.77.1.101     OK       On      Off',
        '  2 [Absent]',
        ' 13 ILOCZ3401A013                 [Unknown]       Degraded Off     On  ',
        'Totals: 2 server blades installed, 1 powered on.',
      ].join('\r\n'),
    );
    assert.deepEqual(list, [
      { bay: 1, present: true, columns: { 'iLO Name': 'ILOCZ3401A001', 'iLO IP Address': '10.77.1.101', Status: 'OK', Power: 'On', UID: 'Off' }, iloName: 'ILOCZ3401A001', iloAddress: '10.77.1.101', status: 'OK', power: 'on' },
      { bay: 2, present: false, columns: {} },
      { bay: 13, present: true, columns: { 'iLO Name': 'ILOCZ3401A013', Status: 'Degraded', Power: 'Off', UID: 'On' }, iloName: 'ILOCZ3401A013', status: 'Degraded', power: 'off' },
    ]);
  });

  it('SHOW SERVER NAMES has the same layout: the server name and serial by heading', () => {
    const list = parseServerList(
      'Bay Server Name                                       Serial Number   Status   Power   UID Partner\n' +
        '--- ------------------------------------------------- --------------- -------- ------- --- -------\n' +
        '  7 HP ProLiant BL460c Gen8                           CZ3401XY07      OK       On      Off\n',
    );
    assert.equal(list?.[0]?.serverName, 'HP ProLiant BL460c Gen8');
    assert.equal(list?.[0]?.serialNumber, 'CZ3401XY07');
    assert.equal(parseServerList('Invalid Arguments\n'), null);
  });

  it('SHOW SERVER INFO: a Fibre Channel WWPN is no MAC', () => {
    const info = parseServerInfo(
      '\tFlexFabric Embedded Ethernet\n\t\tEthernet FlexNIC (NIC 1) LOM1:1-a\t9C:8E:99:4A:10:01\n\tMezzanine Card 1: HP QMH2572 8Gb FC HBA\n\t\tPort 1: 50:01:43:80:12:34:56:78\n',
      1,
    );
    assert.deepEqual(info.nics, [{ name: 'Ethernet FlexNIC (NIC 1) LOM1:1-a', mac: '9c:8e:99:4a:10:01' }]);
  });
});
