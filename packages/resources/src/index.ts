export * from './errors.ts';
export * from './haresources.ts';
export * from './runner.ts';
