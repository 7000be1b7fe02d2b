/**
 * The runtime process's metrics and traces. Metrics: Effect's `Metric`s
 * (src/Metrics.ts) read through `@effect/opentelemetry` into the
 * OpenTelemetry Prometheus exporter, which renders `/metrics` (no server of
 * its own). Traces: only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans
 * exported over OTLP/HTTP; off, nothing is traced at all.
 */
import * as Metrics from "@effect/opentelemetry/Metrics"
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import * as Resource from "@effect/opentelemetry/Resource"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { VERSION } from "../version.js"

export interface Prometheus {
  /** The current metrics in Prometheus text format. */
  readonly text: Effect.Effect<string>
}

/** Registers the exporter for the layer's lifetime and gives the `/metrics` text. */
export const makePrometheus = Effect.gen(function*() {
  const exporter = new PrometheusExporter({ preventServerStart: true })
  const serializer = new PrometheusSerializer()
  yield* Layer.build(
    Metrics.layer(() => exporter).pipe(
      Layer.provide(Resource.layer({ serviceName: "worker-runtime", serviceVersion: VERSION }))
    )
  )
  const text = Effect.promise(() => exporter.collect()).pipe(
    Effect.map(({ resourceMetrics }) => serializer.serialize(resourceMetrics))
  )
  return { text } satisfies Prometheus
})

export interface TracingConfig {
  /** `OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://collector:4318`. */
  readonly endpoint: string
  /** `OTEL_SERVICE_NAME`; default `worker-runtime`. */
  readonly serviceName: string | undefined
}

/** The tracer: spans exported to `<endpoint>/v1/traces` as OTLP/HTTP JSON. */
export const TracingLive = (config: TracingConfig): Layer.Layer<never> =>
  OtlpTracer.layer({
    url: `${config.endpoint.replace(/\/$/, "")}/v1/traces`,
    resource: { serviceName: config.serviceName ?? "worker-runtime", serviceVersion: VERSION },
    exportInterval: "1 second"
  }).pipe(Layer.provide([FetchHttpClient.layer, OtlpSerialization.layerJson]))
