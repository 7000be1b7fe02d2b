#!/usr/bin/env node
/** The `worker-runtime` bin: parse flags, start the process, run until SIGTERM/SIGINT. */
import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

import { VERSION } from "../version.js"
import { options, resolveConfig } from "./Config.js"
import { NodeRuntimeLive } from "./NodeRuntime.js"

const command = Command.make("worker-runtime", options, (raw) =>
  resolveConfig(raw).pipe(
    Effect.flatMap((config) => Layer.launch(NodeRuntimeLive(config))),
    Effect.tapError((error) => Console.error(`worker-runtime: ${error.message}`))
  )).pipe(
    Command.withDescription(
      "Hosts long-lived Workers behind a REST command API. Backends only: browsers are refused."
    )
  )

const cli = Command.run(command, { name: "worker-runtime", version: VERSION })

cli(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
