/**
 * `worker-runtime/ai`: engines that run a model, `openai` (Responses API) and
 * `anthropic` (Messages API), on `@effect/ai` (docs/engines.md). Optional:
 * they need `@effect/ai`, `@effect/ai-openai` / `@effect/ai-anthropic` and
 * `@effect/platform` installed; the core never imports them.
 */
export * from "./AnthropicEngine.js"
export * from "./ModelEngine.js"
export * from "./OpenAiEngine.js"
export * from "./Prompt.js"
