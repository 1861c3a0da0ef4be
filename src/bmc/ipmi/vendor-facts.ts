// What public documents say about the IPMI-over-LAN BMCs forseti meets, by the manufacturer ID (IANA Private
// Enterprise Number) of Get Device ID (`ipmitool mc info`). Only what a document says is encoded; each fact names its
// source and how sure it is. Facts no public document confirms are listed in UNVERIFIED below, not guessed at.
//
// Sources (read through the team's search tool; the excerpts are quoted in docs/ipmi-vendors.md):
//   [ipmi-spec]      IPMI v2.0 rev 1.1, Table 28-14 (boot option parameters 0, 3 and 5) and §28.3 Chassis Control.
//   [ipmipower]      FreeIPMI ipmipower(8), option --on-if-off and KNOWN ISSUES (chu11/freeipmi-mirror,
//                    man/ipmipower.8.pre.in; man/manpage-common-known-issues.man).
//   [freeipmi-wa]    FreeIPMI WORKAROUNDS (man/manpage-common-workaround-outofband-{common,15,20}-text.man,
//                    manpage-common-workaround-extra-text.man): the vendors each workaround flag was observed on.
//   [ipmitool]       ipmitool(1) 1.8.19: -C (default 17 since 1.8.19, 3 before), -N/-R, password limits.
//   [ipmitool-29]    ipmitool issue #29 "Change the default cipher suite to 17": 17 is optional, some BMCs lack it.
//   [fence-ipmilan]  fence_ipmilan(8) (fence-agents): "To use fence_ipmilan with HP iLO 3 or HP iLO 4 you have to
//                    enable lanplus option … and increase wait after operation to 4 seconds (power_wait=4)";
//                    ClusterLabs/fence-agents agents/ipmilan/fence_ipmilan.py: fence_ilo3 power_wait 4 and
//                    lanplus, fence_ilo4 lanplus, fence_imm no defaults of its own.
//   [ilo4-ug]        HP iLO 4 User Guide (684918-006, February 2014), "IPMI/DCMI users" (login name at most 16
//                    characters, password at most 20; IPMI Operator = Remote Console, Virtual Power and Reset and
//                    Virtual Media) and "IPMI server management" (the iLO firmware follows IPMI 2.0).
//   [ha-ipmi-83]     User report, ateodorescu/home-assistant-ipmi issue #83: `lan print` on an iLO 4 lists cipher
//                    suites up to 3; `-C 3` works. Issue #21: ipmitool 1.8.19 without -C against an iLO 4 stops
//                    at "Unable to Get Channel Cipher Suites".
//   [ibm-h194857]    IBM RETAIN tip H194857 (https://www.ibm.com/support/pages/node/854978): the IMM comes with
//                    the account USERID / PASSW0RD (a zero), renamed with `ipmitool user set name 2`: user ID 2.
//   [openipmi]       OpenIPMI ipmi_sim: MontaVista's IANA number; its chassis_control keeps only the boot device.
//   [ironic]         OpenStack ironic, ironic/drivers/modules/ipmitool.py set_boot_device: sends `raw 0x00 0x08 0x03
//                    0x08` by default ("IPMI spec indicates unless you send these raw bytes the boot device setting
//                    times out after 60s"); "Some BMCs do not implement Option 0x03, such as OpenBMC".

/** IANA Private Enterprise Numbers as Get Device ID reports them. */
export const IANA = { IBM: 2, HP: 11, DELL: 674, INTEL: 343, MONTAVISTA: 4753, SUPERMICRO: 10876, LENOVO: 19046 } as const;

/** How much of boot parameter 5 a BMC keeps: all of it, or just the device selector. */
export type BootFlagsKept = 'kept' | 'device-only';

export interface SourcedFact {
  /** What the driver does because of it, in one sentence. */
  fact: string;
  source: string;
  /** documented: a vendor or protocol document, or a tool's manual; reported: a user report in a public issue. */
  status: 'documented' | 'reported';
}

export interface IpmiVendorFacts {
  id: 'ibm-imm' | 'hp-ilo' | 'lenovo' | 'openipmi' | 'generic';
  name: string;
  manufacturerIds: readonly number[];
  /** Cipher suites to try, best first, when the lab names none. */
  cipherSuites: readonly number[];
  /** Wait after a power command before its result is read back (ms). */
  powerSettleMs: number;
  bootFlags: BootFlagsKept;
  /** The vendor's factory account, to warn about; never used to log in. */
  factoryAccount?: { username: string; password: string; source: string };
  facts: readonly SourcedFact[];
}

/** What holds for every BMC the driver talks to, whoever made it. */
export const GENERIC_FACTS: readonly SourcedFact[] = [
  {
    fact: 'cipher suite 17 first, then 3 (the only suite IPMI v2.0 makes mandatory that encrypts); nothing below 3',
    source: '[ipmitool] -C; [ipmitool-29]',
    status: 'documented',
  },
  {
    fact: 'a power cycle or reset of a host that is off is sent as power on',
    source: '[ipmipower] --on-if-off ("The IPMI specification does not require the power cycle or hard reset commands to turn on a machine that is currently powered off")',
    status: 'documented',
  },
  {
    fact: 'every power command is read back until the state is reached (a BMC may answer before acting)',
    source: '[ipmipower] KNOWN ISSUES',
    status: 'documented',
  },
  {
    fact: 'a refused login is never retried (BMCs lock out after repeated authentication errors)',
    source: '[ipmipower] KNOWN ISSUES',
    status: 'documented',
  },
  {
    fact: 'before a boot write, boot parameter 3 bit 3 is set (read first, other bits kept) so the BMC keeps the valid bit past 60 s; a BMC without parameter 3 is asked no more',
    source: '[ipmi-spec] Table 28-14, parameter 3; [ironic]',
    status: 'documented',
  },
  {
    fact: 'boot parameter 0 "set in progress" is waited out, then cleared, before a boot write',
    source: '[ipmi-spec] Table 28-14, parameter 0',
    status: 'documented',
  },
];

const GENERIC: IpmiVendorFacts = {
  id: 'generic',
  name: 'IPMI v2.0 BMC',
  manufacturerIds: [],
  cipherSuites: [17, 3],
  powerSettleMs: 0,
  bootFlags: 'kept',
  facts: [],
};

export const VENDORS: readonly IpmiVendorFacts[] = [
  {
    id: 'ibm-imm',
    name: 'IBM Integrated Management Module (System x, e.g. x3550 M3)',
    manufacturerIds: [IANA.IBM],
    cipherSuites: [17, 3],
    powerSettleMs: 0,
    bootFlags: 'kept',
    factoryAccount: { username: 'USERID', password: 'PASSW0RD', source: '[ibm-h194857]' },
    facts: [
      { fact: 'factory account USERID (user ID 2) with a documented factory password: a probe that logs in with it says so', source: '[ibm-h194857]', status: 'documented' },
      { fact: 'no FreeIPMI workaround names an IMM (forcepermsg names the IBM eServer 325, IPMI v1.5 only)', source: '[freeipmi-wa]', status: 'documented' },
      { fact: 'fence_imm is fence_ipmilan with no IMM-specific waits or options', source: '[fence-ipmilan]', status: 'documented' },
    ],
  },
  {
    id: 'hp-ilo',
    name: 'HP Integrated Lights-Out (iLO 4 on ProLiant Gen8)',
    manufacturerIds: [IANA.HP],
    cipherSuites: [17, 3],
    powerSettleMs: 4000,
    bootFlags: 'kept',
    facts: [
      { fact: 'waits 4 s after a power command before reading the power state back', source: '[fence-ipmilan] (iLO 3 and iLO 4: power_wait=4)', status: 'documented' },
      { fact: 'IPMI login names of at most 16 characters and passwords of at most 20; an operator needs Virtual Power and Reset', source: '[ilo4-ug] "IPMI/DCMI users"', status: 'documented' },
      { fact: 'offers cipher suites up to 3: 17 is refused or unanswered, 3 is taken and remembered', source: '[ha-ipmi-83]', status: 'reported' },
      { fact: 'the suite is always named with -C: ipmitool\'s own choice (Get Channel Cipher Suites) fails there', source: '[ha-ipmi-83] issue #21', status: 'reported' },
    ],
  },
  {
    id: 'lenovo',
    name: 'Lenovo (IMM2 / XClarity Controller)',
    manufacturerIds: [IANA.LENOVO],
    cipherSuites: [17, 3],
    powerSettleMs: 0,
    bootFlags: 'kept',
    facts: [],
  },
  {
    id: 'openipmi',
    name: 'OpenIPMI ipmi_sim',
    manufacturerIds: [IANA.MONTAVISTA],
    cipherSuites: [17, 3],
    powerSettleMs: 0,
    bootFlags: 'device-only',
    facts: [
      { fact: 'keeps only the boot device of boot parameter 5 (valid, persistent and EFI bits read back 0)', source: '[openipmi]', status: 'documented' },
      { fact: 'has no SHA-256: refuses cipher suite 17 with "invalid authentication algorithm"', source: '[openipmi]', status: 'documented' },
    ],
  },
];

/** The facts for a manufacturer ID (null when Get Device ID gave none): the vendor's, else the generic ones. */
export function vendorFacts(manufacturerId: number | null): IpmiVendorFacts {
  return VENDORS.find((v) => manufacturerId !== null && v.manufacturerIds.includes(manufacturerId)) ?? GENERIC;
}

/**
 * What no public document we could read confirms for the seed lab's BMCs; the driver does not depend on any of it
 * (it finds each at run time: the suite by trying, the boot flags by reading back, power by polling).
 */
export const UNVERIFIED: readonly string[] = [
  'iLO 4 and IMM: the list of cipher suites in a vendor document (iLO 4: a user report only; IMM: nothing found)',
  'iLO 4: whether it refuses an Open Session request for cipher suite 17 or leaves it unanswered',
  'iLO 4 and IMM: whether `chassis power cycle` is refused on a host that is off (FreeIPMI: not required to power it on)',
  'iLO 4 and IMM: whether a next-boot-only override and the EFI boot flag are kept as written',
  'iLO 4 and IMM: whether boot parameter 3 (the 60-second valid-bit timeout) is implemented',
  'iLO 4: the "IPMI/DCMI over LAN" access setting and its port in the user guide text (default 623 assumed, as IPMI defines)',
  'IMM: IPMI session or timing quirks, the Get Device ID product ID of an x3550 M3',
];
