/**
 * The prompt of a model turn: the Worker's transcript as messages
 * (docs/engines.md, "What is sent to the model"). `user` entries are user
 * messages, `system` inputs system messages, `worker` entries the
 * assistant's; `runtime` entries (how turns ended) are left out. The
 * profile's `instructions` come first, as a system message.
 */
import * as Prompt from "@effect/ai/Prompt"

import type { TranscriptEntry } from "../Domain.js"

export interface PromptOptions {
  readonly instructions?: string | undefined
  /**
   * Every system message first, in order: for an API that takes one system
   * prompt beside the messages (Anthropic's Messages API keeps only one
   * block of system messages).
   */
  readonly systemFirst?: boolean | undefined
}

type Message = Prompt.MessageEncoded

export const promptMessages = (
  transcript: ReadonlyArray<TranscriptEntry>,
  options: PromptOptions = {}
): ReadonlyArray<Message> => {
  const system: Array<Message> = []
  const rest: Array<Message> = []
  if (options.instructions !== undefined && options.instructions !== "") {
    system.push({ role: "system", content: options.instructions })
  }
  for (const entry of transcript) {
    switch (entry.role) {
      case "user":
        rest.push({ role: "user", content: entry.content })
        break
      case "system":
        ;(options.systemFirst === true ? system : rest).push({ role: "system", content: entry.content })
        break
      case "worker":
        // A turn that ended before any text has an empty entry, or none: nothing to say.
        if (entry.content !== "") rest.push({ role: "assistant", content: entry.content })
        break
      case "runtime":
        break
    }
  }
  return [...system, ...rest]
}

/** The transcript as an `@effect/ai` prompt. */
export const promptOf = (transcript: ReadonlyArray<TranscriptEntry>, options: PromptOptions = {}): Prompt.Prompt =>
  Prompt.make(promptMessages(transcript, options))
