export * from './types.ts';
export * from './errors.ts';
export * from './codec.ts';
