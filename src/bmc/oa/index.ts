// HP Onboard Administrator (BladeSystem c7000/c3000) over its SSH command line. Imports nothing from forseti.
export * from './commands.ts';
export * from './errors.ts';
export * from './parse.ts';
export * from './pool.ts';
export * from './session.ts';
export * from './host-key.ts';
export * from './scan-host-key.ts';
