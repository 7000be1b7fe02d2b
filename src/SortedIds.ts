/**
 * A sorted set of ids for the memory store's indexes: a list of sorted
 * blocks of at most `2 × BLOCK` ids. Adding or removing an id moves at most
 * one block's elements (and, rarely, the block list), so a Worker stopped or
 * deleted among a million costs what it does among a hundred, where one
 * sorted array would move every id after it. Reading from a cursor finds
 * its block by binary search, then walks in order.
 */
const BLOCK = 512

/** Index of the first element of sorted `items` greater than `key`. */
const upperBound = (items: ReadonlyArray<string>, key: string): number => {
  let low = 0
  let high = items.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (items[mid]! <= key) low = mid + 1
    else high = mid
  }
  return low
}

export class SortedIds {
  private readonly blocks: Array<Array<string>> = []
  /** The last id of each block, for finding a block by binary search. */
  private readonly lasts: Array<string> = []
  private count = 0

  get size(): number {
    return this.count
  }

  /** Adds `id`; ids are issued in increasing order, so this is an append in practice. */
  add(id: string): void {
    const blocks = this.blocks
    if (blocks.length === 0) {
      blocks.push([id])
      this.lasts.push(id)
      this.count = 1
      return
    }
    // The first block whose last id is ≥ id, else the last block.
    let at = upperBound(this.lasts, id)
    if (at > 0 && this.lasts[at - 1] === id) return
    if (at === blocks.length) at--
    const block = blocks[at]!
    const index = upperBound(block, id)
    if (index > 0 && block[index - 1] === id) return
    if (index === block.length) block.push(id)
    else block.splice(index, 0, id)
    this.lasts[at] = block[block.length - 1]!
    this.count++
    if (block.length > 2 * BLOCK) {
      const half = block.splice(BLOCK)
      blocks.splice(at + 1, 0, half)
      this.lasts.splice(at, 1, block[block.length - 1]!, half[half.length - 1]!)
    }
  }

  delete(id: string): void {
    const at = this.blockOf(id)
    if (at === this.blocks.length) return
    const block = this.blocks[at]!
    const index = upperBound(block, id) - 1
    if (index < 0 || block[index] !== id) return
    block.splice(index, 1)
    this.count--
    if (block.length === 0) {
      this.blocks.splice(at, 1)
      this.lasts.splice(at, 1)
      return
    }
    this.lasts[at] = block[block.length - 1]!
    // Merge a small block into the next, so that deletions never leave many tiny blocks.
    const next = this.blocks[at + 1]
    if (block.length < BLOCK / 4 && next !== undefined && block.length + next.length <= 2 * BLOCK) {
      next.unshift(...block)
      this.blocks.splice(at, 1)
      this.lasts.splice(at, 1)
    }
  }

  /** Calls `visit` on each id greater than `after` (every id when undefined), in order, until it returns false. */
  forEachAfter(after: string | undefined, visit: (id: string) => boolean): void {
    const blocks = this.blocks
    let at = after === undefined ? 0 : this.blockOf(after)
    let index = after === undefined || at === blocks.length ? 0 : upperBound(blocks[at]!, after)
    for (; at < blocks.length; at++, index = 0) {
      const block = blocks[at]!
      for (; index < block.length; index++) {
        if (!visit(block[index]!)) return
      }
    }
  }

  toArray(): Array<string> {
    return this.blocks.flat()
  }

  /** The block that holds `id` if any does: the first whose last id is ≥ id. */
  private blockOf(id: string): number {
    let low = 0
    let high = this.lasts.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (this.lasts[mid]! < id) low = mid + 1
      else high = mid
    }
    return low
  }
}
