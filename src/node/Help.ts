/**
 * Compact `--help` for a command: one entry per flag, its heading as
 * @effect/cli writes it (`--port integer`) and the description the Options
 * carry (`Options.withDescription`), without @effect/cli's boilerplate around
 * it (the value's type, "This setting is optional.", "This option can be set
 * from environment variables."). Rendered from the Options' own `HelpDoc`, so
 * a flag is described in one place; a subcommand renders its page the same way.
 */
import type * as HelpDoc from "@effect/cli/HelpDoc"
import type * as Span from "@effect/cli/HelpDoc/Span"
import type * as Usage from "@effect/cli/Usage"

export interface HelpPage {
  /** What is typed to run it: `worker-runtime`, or `worker-runtime create` for a subcommand. */
  readonly name: string
  readonly version?: string | undefined
  readonly description: string
  /** The command's usage (`Command.getUsage`): its flags are shown as `[options]`, its arguments by name. */
  readonly usage: Usage.Usage
  /** Titled lists of flags, each from the `Options.getHelp` of some options (`flagHelp`). */
  readonly options: ReadonlyArray<{ readonly title: string; readonly flags: ReadonlyArray<FlagHelp> }>
  /** Titled paragraphs after the flags. */
  readonly notes?: ReadonlyArray<{ readonly title: string; readonly text: string }> | undefined
}

/** A flag's entry: `--port integer` and what it does. */
export interface FlagHelp {
  readonly heading: string
  readonly description: string
}

const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Highlight":
    case "Strong":
    case "Weak":
      return spanText(span.value)
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
  }
}

const paragraphs = (doc: HelpDoc.HelpDoc): Array<string> => {
  switch (doc._tag) {
    case "Paragraph":
      return [spanText(doc.value)]
    case "Sequence":
      return [...paragraphs(doc.left), ...paragraphs(doc.right)]
    case "Enumeration":
      return doc.elements.flatMap(paragraphs)
    case "DescriptionList":
    case "Header":
    case "Empty":
      return []
  }
}

/** What @effect/cli adds to every optional flag or flag with a fallback (a default shown only when the description lacks one). */
const OPTIONAL = /^This setting is optional\.(?: Defaults to: (.*))?$/
const BOILERPLATE = [
  /^This option can be set from environment variables\.$/,
  /^Will prompt the user for input if this option is not provided\.$/
]

/**
 * The flags `help` (`Options.getHelp`) lists, in its order. The first
 * paragraph of each is the value's type ("An integer.", "One of the
 * following: ..."), which the heading shows already: it is kept only for a
 * flag without a description of its own.
 */
export const flagHelp = (help: HelpDoc.HelpDoc): Array<FlagHelp> => {
  switch (help._tag) {
    case "Sequence":
      return [...flagHelp(help.left), ...flagHelp(help.right)]
    case "DescriptionList":
      return help.definitions.map(([span, block]) => {
        const [type = "", ...rest] = paragraphs(block)
        let fallback: string | undefined
        const own = rest.filter((text) => {
          const optional = OPTIONAL.exec(text)
          if (optional !== null) fallback = optional[1]
          return optional === null && !BOILERPLATE.some((pattern) => pattern.test(text))
        })
        const described = own.join(" ")
        const description = described === ""
          ? type
          : fallback !== undefined && fallback !== "" && !/\bDefault\b/.test(described)
          ? `${described} Default: ${fallback}.`
          : described
        // @effect/cli writes a flag with an alias as `(-h, --help)`.
        const heading = spanText(span).replace(/^\((.*)\)$/, "$1")
        return { heading, description }
      })
    default:
      return []
  }
}

/**
 * `name [options] <arg>`: the flags as one `[options]`, the arguments by their pseudo-names.
 * `usage` starts with the command's own name (`Command.getUsage`), which
 * `name` says already.
 */
const usageLine = (name: string, usage: Usage.Usage): string => {
  let flags = false
  const words = (usage: Usage.Usage): Array<string> => {
    switch (usage._tag) {
      case "Named":
        if (usage.names.some((flag) => flag.startsWith("-"))) {
          flags = true
          return []
        }
        // The command's name, or an argument's (`<id>`).
        return [usage.names.join("|")]
      case "Optional": {
        const inner = words(usage.usage)
        return inner.length === 0 ? [] : [`[${inner.join(" ")}]`]
      }
      case "Repeated": {
        const inner = words(usage.usage)
        return inner.length === 0 ? [] : [`${inner.join(" ")}...`]
      }
      case "Alternation": {
        const [left, right] = [words(usage.left), words(usage.right)]
        return left.length === 0 || right.length === 0
          ? [...left, ...right]
          : [`(${left.join(" ")} | ${right.join(" ")})`]
      }
      case "Concat":
        return [...words(usage.left), ...words(usage.right)]
      case "Empty":
        return []
      case "Mixed":
        return ["<command>"]
    }
  }
  const [command, ...args] = words(usage)
  const own = command === undefined || command === name.split(" ").at(-1) ? [] : [command]
  return [name, ...(flags ? ["[options]"] : []), ...own, ...args].join(" ")
}

/** `text` in lines of at most `width` columns (a longer word gets a line of its own), all but the first after `indent`. */
const wrap = (text: string, width: number, indent: number, first = 0): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  let room = width - first
  for (const word of text.split(/\s+/).filter((word) => word !== "")) {
    if (line !== "" && line.length + 1 + word.length > room) {
      lines.push(line)
      line = ""
      room = width - indent
    }
    line = line === "" ? word : `${line} ${word}`
  }
  lines.push(line)
  return lines.map((text, i) => (i === 0 ? text : " ".repeat(indent) + text))
}

/** `lines` with the first one indented like the others. */
const indent = ([first = "", ...rest]: Array<string>): Array<string> => [`  ${first}`, ...rest]

const bold = (text: string) => `\u001b[1m${text}\u001b[22m`

/** Headings wider than this do not widen the column: their description starts on the next line. */
const MAX_COLUMN = 30

/**
 * The page as text, wrapped at `width` columns, headings and flags in bold:
 * print it through a console that strips styles when it is not a terminal.
 */
export const renderHelp = (page: HelpPage, width = 100): string => {
  const headings = page.options.flatMap(({ flags }) => flags.map(({ heading }) => heading.length))
  const column = 2 + Math.max(0, ...headings.filter((length) => length <= MAX_COLUMN)) + 2
  const entry = ({ description, heading }: FlagHelp): Array<string> => {
    const head = `  ${bold(heading)}`
    const [first = "", ...rest] = wrap(description, width, column, column)
    return heading.length + 4 > column
      ? [head, `${" ".repeat(column)}${first}`, ...rest]
      : [`${head}${" ".repeat(column - 2 - heading.length)}${first}`, ...rest]
  }
  const section = (title: string, body: Array<string>) => ["", bold(title), ...body]
  return [
    page.version === undefined ? page.name : `${page.name} ${page.version}`,
    "",
    ...wrap(page.description, width, 0),
    ...section("USAGE", [`  ${usageLine(page.name, page.usage)}`]),
    ...page.options.flatMap(({ flags, title }) => section(title, flags.flatMap(entry))),
    ...(page.notes ?? []).flatMap(({ text, title }) => section(title, indent(wrap(text, width, 2, 2))))
  ].join("\n")
}
