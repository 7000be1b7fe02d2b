/**
 * The published OpenAPI document is the one `HttpApi` derives, with what
 * other languages' generators and linters need that the derivation does not
 * give: headers on 401 and 503, optional bodies where the server takes none,
 * the list's metadata filter, the document's own path, and no noise (the
 * platform's decode error, which the server never answers, generated titles,
 * one-member `anyOf`s).
 */

import { MAX_METADATA_FILTERS, MAX_METADATA_KEY_LENGTH } from "../Domain.js"

type Json = unknown

const isObject = (value: Json): value is Record<string, Json> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const DECODE_REF = "#/components/schemas/HttpApiDecodeError"

/** Applies `visit` bottom-up to every object of the document. */
const mapObjects = (value: Json, visit: (object: Record<string, Json>) => Json): Json => {
  if (Array.isArray(value)) return value.map((item) => mapObjects(item, visit))
  if (!isObject(value)) return value
  return visit(Object.fromEntries(Object.entries(value).map(([key, item]) => [key, mapObjects(item, visit)])))
}

const cleanSchema = (object: Record<string, Json>): Json => {
  const { title: _title, ...rest } = object
  let out: Record<string, Json> = "title" in object && !("openapi" in object) && !("version" in object) ? rest : object
  for (const key of ["anyOf", "oneOf"]) {
    const members = out[key]
    if (!Array.isArray(members)) continue
    // Drop the decode error (the server answers InvalidInput instead) and repeats.
    const seen = new Set<string>()
    const kept = members.filter((member) => {
      if (isObject(member) && member.$ref === DECODE_REF) return false
      const text = JSON.stringify(member)
      return seen.has(text) ? false : (seen.add(text), true)
    })
    if (kept.length === 1 && isObject(kept[0])) {
      const { [key]: _members, ...others } = out
      out = { ...others, ...kept[0] }
    } else {
      out = { ...out, [key]: kept }
    }
  }
  return out
}

/** Component schemas nothing refers to any more (the decode error's own). */
const pruneSchemas = (spec: Record<string, Json>): Record<string, Json> => {
  const components = spec.components
  if (!isObject(components) || !isObject(components.schemas)) return spec
  let kept = Object.entries(components.schemas)
  for (;;) {
    const text = JSON.stringify({ ...spec, components: { ...components, schemas: Object.fromEntries(kept) } })
    const next = kept.filter(([name]) => text.includes(`"#/components/schemas/${name}"`))
    if (next.length === kept.length) break
    kept = next
  }
  return { ...spec, components: { ...components, schemas: Object.fromEntries(kept) } }
}

const RESPONSE_HEADERS: Record<string, Record<string, Json>> = {
  "401": {
    "WWW-Authenticate": {
      description: "Always `Bearer`: send `Authorization: Bearer <token>`",
      schema: { type: "string", const: "Bearer" }
    }
  },
  "405": {
    Allow: { description: "The methods the path has", schema: { type: "string" } }
  },
  "503": {
    "Retry-After": {
      description: "Seconds after which a retry may succeed",
      schema: { type: "integer", minimum: 1 }
    }
  }
}

/** Operations whose body may be left out. */
const OPTIONAL_BODIES = new Set(["workers.cancel", "workers.stop"])

const errorResponse = (description: string, tag: string) => ({
  description,
  content: {
    "application/json": {
      schema: {
        type: "object",
        required: ["_tag", "message"],
        properties: { _tag: { type: "string", const: tag }, message: { type: "string" } }
      }
    }
  }
})

const openApiPath = {
  get: {
    tags: ["runtime"],
    operationId: "openapi",
    summary: "This document",
    description: "The OpenAPI document derived from the Runtime's own API definition. Needs the token when one is set.",
    security: [{ bearer: [] }],
    parameters: [],
    responses: {
      "200": {
        description: "The OpenAPI 3.1 document",
        content: { "application/json": { schema: { type: "object" } } }
      },
      "401": { ...errorResponse("Missing or wrong bearer token", "Unauthorized"), headers: RESPONSE_HEADERS["401"] },
      "403": errorResponse("The request comes from a browser, or its Host is not allowed", "Forbidden")
    }
  }
}

const FILTER_PREFIX = "metadata."

/**
 * The list's `metadata.<key>=<value>` pairs, which the derivation drops (its
 * keys are open). OpenAPI has no parameter with an open name, so this is one
 * `form`-exploded object: its property names are the query names, and
 * generators type it (openapi-typescript: `metadata?: { [key: string]: string }`).
 * Not `deepObject`: that is `metadata[team]=docs`, which the server ignores.
 */
const metadataFilter = {
  name: "metadata",
  in: "query",
  required: false,
  style: "form",
  explode: true,
  description: `The metadata filter: \`metadata.<key>=<value>\` query parameters, exact match, at most ` +
    `${MAX_METADATA_FILTERS} pairs, all must match. There is no parameter named \`metadata\` on the wire: this ` +
    "object is form-exploded, so its property names are the query names (`{\"metadata.team\": \"docs\"}` is " +
    "sent as `metadata.team=docs`). Clients that send objects as `deepObject` by default (openapi-fetch) need " +
    "`querySerializer: { object: { style: \"form\", explode: true } }`.",
  schema: {
    type: "object",
    maxProperties: MAX_METADATA_FILTERS,
    propertyNames: {
      type: "string",
      pattern: "^metadata\\.",
      minLength: FILTER_PREFIX.length + 1,
      maxLength: FILTER_PREFIX.length + MAX_METADATA_KEY_LENGTH,
      not: { const: `${FILTER_PREFIX}__proto__` }
    },
    additionalProperties: { type: "string" }
  },
  example: { "metadata.team": "docs" }
}

/** Parameters the derivation cannot give, by operation. */
const EXTRA_PARAMETERS: Record<string, ReadonlyArray<Record<string, Json>>> = {
  "workers.list": [metadataFilter]
}

/** A parameter's description: its own, else its schema's (through a `$ref`). */
const describeParameter = (parameter: Json, schemas: Record<string, Json>): Json => {
  if (!isObject(parameter) || typeof parameter.description === "string") return parameter
  const schema = parameter.schema
  const target = isObject(schema) && typeof schema.$ref === "string"
    ? schemas[schema.$ref.replace("#/components/schemas/", "")]
    : schema
  return isObject(target) && typeof target.description === "string"
    ? { ...parameter, description: target.description }
    : parameter
}

const metricsPath = {
  get: {
    tags: ["runtime"],
    operationId: "metrics",
    summary: "Metrics",
    description: "Prometheus text: Workers by status, turns, requests, store commits, event streams, child " +
      "processes (docs/operations.md). Served by the runtime process; needs the token when one is set.",
    security: [{ bearer: [] }],
    parameters: [],
    responses: {
      "200": {
        description: "Metrics in the Prometheus text format 0.0.4",
        content: {
          "text/plain": {
            schema: { type: "string" },
            example: "# TYPE worker_runtime_workers gauge\nworker_runtime_workers{status=\"idle\"} 1\n"
          }
        }
      },
      "401": { ...errorResponse("Missing or wrong bearer token", "Unauthorized"), headers: RESPONSE_HEADERS["401"] },
      "403": errorResponse("The request comes from a browser, or its Host is not allowed", "Forbidden")
    }
  }
}

const patchOperations = (spec: Record<string, Json>): Record<string, Json> => {
  const schemas = isObject(spec.components) && isObject(spec.components.schemas) ? spec.components.schemas : {}
  const paths = isObject(spec.paths) ? spec.paths : {}
  const patched = Object.fromEntries(
    Object.entries(paths).map(([path, item]) => {
      if (!isObject(item)) return [path, item]
      return [
        path,
        Object.fromEntries(
          Object.entries(item).map(([method, operation]) => {
            if (!isObject(operation)) return [method, operation]
            const responses = isObject(operation.responses) ? operation.responses : {}
            const withHeaders = Object.fromEntries(
              Object.entries(responses).map(([status, response]) => {
                const headers = RESPONSE_HEADERS[status]
                return [status, headers !== undefined && isObject(response) ? { ...response, headers } : response]
              })
            )
            const body = operation.requestBody
            const requestBody = isObject(body) && typeof operation.operationId === "string" &&
                OPTIONAL_BODIES.has(operation.operationId)
              ? { ...body, required: false }
              : body
            const derived = Array.isArray(operation.parameters)
              ? operation.parameters.map((parameter) => describeParameter(parameter, schemas))
              : operation.parameters
            const extra = typeof operation.operationId === "string"
              ? EXTRA_PARAMETERS[operation.operationId] ?? []
              : []
            const parameters = extra.length === 0
              ? derived
              : [
                ...(Array.isArray(derived) ? derived : []),
                ...extra.filter((parameter) =>
                  !(Array.isArray(derived) &&
                    derived.some((known) =>
                      isObject(known) && known.name === parameter.name && known.in === parameter.in
                    ))
                )
              ]
            return [method, {
              ...operation,
              parameters,
              responses: withHeaders,
              ...(requestBody === undefined ? {} : { requestBody })
            }]
          })
        )
      ]
    })
  )
  return { ...spec, paths: { ...patched, "/openapi.json": openApiPath, "/metrics": metricsPath } }
}

/** An example value for `schema`: its own first example, else one made from its type. */
const exampleOf = (schema: Json, schemas: Record<string, Json>, depth = 0): Json => {
  if (!isObject(schema) || depth > 8) return null
  if (typeof schema.$ref === "string") {
    const target = schemas[schema.$ref.replace("#/components/schemas/", "")]
    return exampleOf(isObject(target) ? { ...target, ...schema, $ref: undefined } : {}, schemas, depth + 1)
  }
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0]
  if ("const" in schema) return schema.const
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0]
  for (const key of ["anyOf", "oneOf"]) {
    const members = schema[key]
    if (Array.isArray(members) && members.length > 0) return exampleOf(members[0], schemas, depth + 1)
  }
  switch (schema.type) {
    case "object": {
      const properties = isObject(schema.properties) ? schema.properties : {}
      const required = Array.isArray(schema.required) ? schema.required : []
      return Object.fromEntries(
        required.flatMap((name) =>
          typeof name === "string"
            ? [[
              name,
              name === "message" ? "What went wrong, in one sentence." : exampleOf(properties[name], schemas, depth + 1)
            ]]
            : []
        )
      )
    }
    case "array":
      return []
    case "integer":
    case "number":
      return typeof schema.minimum === "number" ? schema.minimum : 0
    case "boolean":
      return true
    case "string":
      return "text"
    default:
      return null
  }
}

/** Gives every request and response body an example (linters and generated clients show them). */
const addExamples = (spec: Record<string, Json>): Record<string, Json> => {
  const schemas = isObject(spec.components) && isObject(spec.components.schemas) ? spec.components.schemas : {}
  const withExample = (media: Json): Json =>
    isObject(media) && !("example" in media) && "schema" in media
      ? { ...media, example: exampleOf(media.schema, schemas) }
      : media
  const visitContent = (holder: Json): Json =>
    isObject(holder) && isObject(holder.content)
      ? {
        ...holder,
        content: Object.fromEntries(Object.entries(holder.content).map(([type, media]) => [type, withExample(media)]))
      }
      : holder
  const paths = isObject(spec.paths) ? spec.paths : {}
  return {
    ...spec,
    paths: Object.fromEntries(
      Object.entries(paths).map(([path, item]) => [
        path,
        isObject(item)
          ? Object.fromEntries(
            Object.entries(item).map(([method, operation]) => {
              if (!isObject(operation)) return [method, operation]
              const responses = isObject(operation.responses) ? operation.responses : {}
              return [method, {
                ...operation,
                ...(operation.requestBody === undefined ? {} : { requestBody: visitContent(operation.requestBody) }),
                responses: Object.fromEntries(
                  Object.entries(responses).map(([status, response]) => [status, visitContent(response)])
                )
              }]
            })
          )
          : item
      ])
    )
  }
}

/** The transform `RuntimeApi` registers with `OpenApi.annotations`. */
export const documentTransform = (spec: Record<string, Json>): Record<string, Json> => {
  const cleaned = mapObjects(spec, cleanSchema)
  return addExamples(patchOperations(pruneSchemas(isObject(cleaned) ? cleaned : spec)))
}
