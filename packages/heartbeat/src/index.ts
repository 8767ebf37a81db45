export * from './types.ts';
export * from './errors.ts';
export * from './codec.ts';
export * from './hacf.ts';
export * from './authkeys.ts';
export * from './media/index.ts';
