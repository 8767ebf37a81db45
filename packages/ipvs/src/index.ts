export * from './model.ts';
export * from './diff.ts';
export * from './errors.ts';
export * from './addr.ts';
export * from './table.ts';
export { MemoryBackend } from './backends/memory.ts';
