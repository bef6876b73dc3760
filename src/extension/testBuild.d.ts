/** true only in test builds (`node esbuild.mjs --test-hooks`); replaced at build time by esbuild's define. */
declare const __LLAVA_TEST_HOOKS__: boolean;
