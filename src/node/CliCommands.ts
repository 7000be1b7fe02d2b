/**
 * The `worker-runtime` subcommands that drive a running runtime through
 * `RuntimeHttpClient` (docs/cli.md): each one's flags, arguments, help and
 * what it prints. Each handler records its exit code in `ExitCode`;
 * errors stay in the error channel for `CliMain` to turn into exit codes.
 */
import * as Args from "@effect/cli/Args"
import type * as CliApp from "@effect/cli/CliApp"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type * as Usage from "@effect/cli/Usage"
import type * as ValidationError from "@effect/cli/ValidationError"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Arr from "effect/Array"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"

import { type Worker, WorkerId } from "../Domain.js"
import type { RuntimeError } from "../Errors.js"
import { RuntimeHttpClientLive } from "../http/Client.js"
import { Runtime } from "../Runtime.js"
import { VERSION } from "../version.js"
import { followTurn, followWorker } from "./CliFollow.js"
import { entryLine, infoText, isStyled, jsonLine, printLine, workersTable } from "./CliOutput.js"

/** A flag or environment variable the command cannot use; the message says which (exit 2). */
export class CliUsageError extends Schema.TaggedError<CliUsageError>()("CliUsageError", {
  message: Schema.String
}) {}

/** Where a subcommand's handler leaves its exit code. */
export class ExitCode extends Context.Tag("worker-runtime/cli/ExitCode")<ExitCode, Ref.Ref<number>>() {}

export const DEFAULT_URL = "http://127.0.0.1:8787"

const connection = {
  url: Options.text("url").pipe(
    Options.withFallbackConfig(Config.string("WORKER_RUNTIME_URL")),
    Options.withDefault(DEFAULT_URL),
    Options.withDescription(
      `The runtime's root URL, or several comma-separated (a cluster's runners: tried in turn when one ` +
        `refuses or answers 503). Env WORKER_RUNTIME_URL. Default: ${DEFAULT_URL}.`
    )
  ),
  tokenFile: Options.text("token-file").pipe(
    Options.optional,
    Options.withDescription("A file holding the runtime's token. Without it: WORKER_RUNTIME_TOKEN, else none.")
  )
}

const json = Options.boolean("json").pipe(Options.withDescription("Print JSON, one object a line."))

const workerId = Args.text({ name: "id" }).pipe(Args.withDescription("The Worker's id."))

const reason = Options.text("reason").pipe(Options.optional, Options.withDescription("Why, recorded with it."))

const metadata = Options.keyValueMap("metadata").pipe(
  Options.optional,
  Options.withDescription("A key=value pair; repeat the flag for more.")
)

const metadataRecord = (pairs: Option.Option<HashMap.HashMap<string, string>>) =>
  Option.match(pairs, {
    onNone: () => undefined,
    onSome: (map) => Object.fromEntries(HashMap.toEntries(map))
  })

type Connection = { readonly url: string; readonly tokenFile: Option.Option<string> }

const isHttpUrl = (url: string) => URL.canParse(url) && /^https?:$/.test(new URL(url).protocol)

/** The URLs of `url` (comma-separated), and the token: from `--token-file`, else WORKER_RUNTIME_TOKEN. */
const clientLayer = ({ tokenFile, url }: Connection) =>
  Effect.gen(function*() {
    const baseUrl = url.split(",").map((part) => part.trim()).filter((part) => part !== "")
    if (!Arr.isNonEmptyReadonlyArray(baseUrl) || !baseUrl.every(isHttpUrl)) {
      return yield* new CliUsageError({
        message: `--url must be an http(s) URL or several, comma-separated, got ${JSON.stringify(url)}`
      })
    }
    const fromFile = yield* Option.match(tokenFile, {
      onNone: () => Effect.succeed(Option.none<string>()),
      onSome: (path) =>
        Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(path)).pipe(
          Effect.map((text) => Option.some(text.trim())),
          Effect.mapError((error) =>
            new CliUsageError({ message: `cannot read --token-file ${path}: ${error.message}` })
          )
        )
    })
    const fromEnv = yield* Config.option(Config.redacted("WORKER_RUNTIME_TOKEN")).pipe(
      Effect.map(Option.map((token) => Redacted.value(token).trim())),
      Effect.mapError(() => new CliUsageError({ message: "WORKER_RUNTIME_TOKEN cannot be read" }))
    )
    const token = Option.filter(Option.orElse(fromFile, () => fromEnv), (token) => token !== "")
    return RuntimeHttpClientLive({ baseUrl, token: Option.getOrUndefined(token) }).pipe(
      Layer.provide(FetchHttpClient.layer)
    )
  })

/** The handler of a subcommand: `run` against the runtime at `flags`' URL, its exit code recorded. */
const against = <F extends Connection, E>(run: (flags: F) => Effect.Effect<number, E, Runtime>) => (flags: F) =>
  Effect.gen(function*() {
    const layer = yield* clientLayer(flags)
    const code = yield* Effect.provide(run(flags), layer)
    yield* Effect.flatMap(ExitCode, (ref) => Ref.set(ref, code))
  })

const done = Effect.as(0)

export interface Subcommand {
  readonly name: string
  readonly description: string
  readonly example: string
  /** The command's usage line (`Command.getUsage`), for its help page. */
  readonly usage: Usage.Usage
  /** Parses `argv` (`node script <flags and args>`) and runs it; bad usage is a `ValidationError`, printed already. */
  readonly run: (
    argv: ReadonlyArray<string>
  ) => Effect.Effect<
    void,
    CliUsageError | RuntimeError | ValidationError.ValidationError,
    ExitCode | CliApp.CliApp.Environment
  >
  /** Its flags, for its help page. */
  readonly options: Options.Options<unknown>
  /** Its arguments, for its help page. */
  readonly args: Args.Args<unknown>
}

const make = <
  Name extends string,
  R extends ExitCode | FileSystem.FileSystem,
  E extends CliUsageError | RuntimeError,
  A
>(
  name: Name,
  description: string,
  example: string,
  command: Command.Command<Name, R, E, A>,
  args: Args.Args<unknown>,
  options: Options.Options<unknown>
): Subcommand => {
  return {
    name,
    description,
    example,
    usage: Command.getUsage(command),
    run: Command.run(command, { name: `worker-runtime ${name}`, version: VERSION }),
    options,
    args
  }
}

const allWorkers = (query: { readonly status?: Worker["status"]; readonly metadata?: Record<string, string> }) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const workers: Array<Worker> = []
    let after: string | undefined
    for (;;) {
      const page = yield* runtime.list({ ...query, limit: 1000, ...(after === undefined ? {} : { after }) })
      workers.push(...page.workers)
      if (page.nextAfter === null) return workers
      after = page.nextAfter
    }
  })

const info = make(
  "info",
  "The runtime's id, status, store, profiles and Worker counts.",
  "worker-runtime info --url http://127.0.0.1:8787",
  Command.make(
    "info",
    { ...connection, json },
    against(({ json }) =>
      Effect.flatMap(Runtime, (runtime) => runtime.info).pipe(
        Effect.flatMap((info) => printLine(json ? jsonLine(info) : infoText(info))),
        done
      )
    )
  ),
  Args.none,
  Options.all({ ...connection, json })
)

const STATUSES = ["idle", "busy", "stopped", "failed"] as const
const status = Options.choice("status", STATUSES).pipe(Options.optional, Options.withDescription("Only Workers in it."))

const list = make(
  "list",
  "The Workers (every page), oldest first: id, profile, status, turn, queued, updated, metadata.",
  "worker-runtime list --status idle --metadata team=docs",
  Command.make(
    "list",
    { ...connection, json, status, metadata },
    against(({ json, metadata, status }) =>
      allWorkers({
        ...Option.match(status, { onNone: () => ({}), onSome: (status) => ({ status }) }),
        ...(Option.isSome(metadata) ? { metadata: metadataRecord(metadata) ?? {} } : {})
      }).pipe(
        Effect.flatMap((workers) =>
          json ? Effect.forEach(workers, (worker) => printLine(jsonLine(worker))) : printLine(workersTable(workers))
        ),
        done
      )
    )
  ),
  Args.none,
  Options.all({ ...connection, json, status, metadata })
)

const profile = Options.text("profile").pipe(
  Options.optional,
  Options.withDescription("The profile to create it with. Default: default.")
)
const idempotencyKey = Options.text("idempotency-key").pipe(
  Options.optional,
  Options.withDescription("Creates one Worker however often it is sent with this key.")
)

const create = make(
  "create",
  "Creates a Worker and prints its id alone.",
  "worker-runtime create --profile default --metadata team=docs",
  Command.make(
    "create",
    { ...connection, profile, metadata, idempotencyKey },
    against(({ idempotencyKey, metadata, profile }) =>
      Effect.flatMap(Runtime, (runtime) =>
        runtime.create({
          ...Option.match(profile, { onNone: () => ({}), onSome: (profile) => ({ profile }) }),
          ...Option.match(idempotencyKey, { onNone: () => ({}), onSome: (idempotencyKey) => ({ idempotencyKey }) }),
          ...(Option.isSome(metadata) ? { metadata: metadataRecord(metadata) ?? {} } : {})
        })).pipe(Effect.flatMap((worker) => printLine(worker.id)), done)
    )
  ),
  Args.none,
  Options.all({ ...connection, profile, metadata, idempotencyKey })
)

const text = Args.text({ name: "text" }).pipe(Args.withDescription("The input."))
const ifBusy = Options.choice("if-busy", ["reject", "enqueue", "interrupt"] as const).pipe(
  Options.optional,
  Options.withDescription("When a turn is in flight: refuse (Busy), queue it, or cancel the turn. Default: reject.")
)
const follow = Options.boolean("follow").pipe(
  Options.withDescription(
    "Print the turn's output live, exit when it ends: 0 completed, 1 failed, 130 cancelled. Without it: the input's seq, or queued N."
  )
)

const send = make(
  "send",
  "Sends input to a Worker: prints its seq (or its queue position), or with --follow the turn's output.",
  "worker-runtime send $W 'hello' --follow",
  Command.make(
    "send",
    { ...connection, json, ifBusy, follow, id: workerId, text },
    against(({ follow, id, ifBusy, json, text }) =>
      Effect.gen(function*() {
        const runtime = yield* Runtime
        const accepted = yield* runtime.input(WorkerId.make(id), {
          content: text,
          ...Option.match(ifBusy, { onNone: () => ({}), onSome: (ifBusy) => ({ ifBusy }) })
        })
        if (follow) return yield* followTurn(WorkerId.make(id), accepted, json)
        yield* printLine(
          json
            ? jsonLine(accepted)
            : accepted.queued
            ? `queued ${accepted.position ?? ""}`.trim()
            : String(accepted.entry?.seq ?? accepted.worker.lastSeq)
        )
        return 0
      })
    )
  ),
  Args.all({ id: workerId, text }),
  Options.all({ ...connection, ifBusy, follow, json })
)

const after = Options.integer("after").pipe(
  Options.withDefault(0),
  Options.withDescription("Only entries with a greater seq. Default: 0.")
)

const followCommand = make(
  "follow",
  "Prints a Worker's entries live, from the start (or --after), until it stops or Ctrl-C.",
  "worker-runtime follow $W --after 10",
  Command.make(
    "follow",
    { ...connection, json, after, id: workerId },
    against(({ after, id, json }) => followWorker(WorkerId.make(id), after, json))
  ),
  Args.all({ id: workerId }),
  Options.all({ ...connection, after, json })
)

const transcript = make(
  "transcript",
  "Prints a Worker's whole transcript (every page).",
  "worker-runtime transcript $W --json",
  Command.make(
    "transcript",
    { ...connection, json, id: workerId },
    against(({ id, json }) =>
      Effect.gen(function*() {
        const runtime = yield* Runtime
        let after = 0
        for (;;) {
          const page = yield* runtime.transcript(WorkerId.make(id), { after, limit: 1000 })
          for (const entry of page.entries) {
            yield* printLine(json ? jsonLine(entry) : entryLine(entry, isStyled(process.stdout)))
          }
          if (page.nextAfter === null) return 0
          after = page.nextAfter
        }
      })
    )
  ),
  Args.all({ id: workerId }),
  Options.all({ ...connection, json })
)

const clearQueue = Options.boolean("clear-queue").pipe(Options.withDescription("Drop the queued inputs too."))

const cancel = make(
  "cancel",
  "Cancels the turn in flight: prints cancelled, or nothing to cancel (exit 0 either way).",
  "worker-runtime cancel $W --reason 'enough' --clear-queue",
  Command.make(
    "cancel",
    { ...connection, reason, clearQueue, id: workerId },
    against(({ clearQueue, id, reason }) =>
      Effect.flatMap(Runtime, (runtime) =>
        runtime.cancel(WorkerId.make(id), {
          ...Option.match(reason, { onNone: () => ({}), onSome: (reason) => ({ reason }) }),
          ...(clearQueue ? { clearQueue } : {})
        })).pipe(
          Effect.flatMap((result) => printLine(result.cancelled ? "cancelled" : "nothing to cancel")),
          done
        )
    )
  ),
  Args.all({ id: workerId }),
  Options.all({ ...connection, reason, clearQueue })
)

const stop = make(
  "stop",
  "Stops a Worker for good (its turn and queue too) and prints its status.",
  "worker-runtime stop $W --reason 'done'",
  Command.make(
    "stop",
    { ...connection, reason, id: workerId },
    against(({ id, reason }) =>
      Effect.flatMap(Runtime, (runtime) =>
        runtime.stop(
          WorkerId.make(id),
          Option.match(reason, { onNone: () => ({}), onSome: (reason) => ({ reason }) })
        )).pipe(Effect.flatMap((worker) => printLine(worker.status)), done)
    )
  ),
  Args.all({ id: workerId }),
  Options.all({ ...connection, reason })
)

const deleteCommand = make(
  "delete",
  "Deletes a stopped or failed Worker and its transcript, for good.",
  "worker-runtime delete $W",
  Command.make(
    "delete",
    { ...connection, id: workerId },
    against(({ id }) => Effect.flatMap(Runtime, (runtime) => runtime.delete(WorkerId.make(id))).pipe(done))
  ),
  Args.all({ id: workerId }),
  Options.all(connection)
)

export const subcommands: ReadonlyArray<Subcommand> = [
  info,
  list,
  create,
  send,
  followCommand,
  transcript,
  cancel,
  stop,
  deleteCommand
]
