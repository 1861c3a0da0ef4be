// Wake-on-LAN. Imports nothing from forseti.
export * from './magic-packet.ts';
export * from './send.ts';
