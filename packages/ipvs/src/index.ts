export * from './model.ts';
export * from './diff.ts';
