#!/usr/bin/env node
// ipvsadm 1.31's command line on the embedded balancer (tandem-ipvsd). See packages/ipvs/README.md.
// Scripts and ldirectord run it once per change: Node's compile cache (in the temp directory, or
// $NODE_COMPILE_CACHE) cuts its start from about 0.3 s to 0.06 s of CPU.
import { enableCompileCache } from 'node:module';

enableCompileCache?.();
await import('../src/ipvsadm-main.ts');
