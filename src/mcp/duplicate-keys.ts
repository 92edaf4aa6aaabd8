const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * The first key that appears twice in one object of a JSON text that JSON.parse accepted, or
 * undefined. JSON.parse keeps the last of two equal keys; other parsers keep the first (simdjson's
 * find_field, for one), so {"method":"tools/call","method":"ping"} is a ping to the gateway and
 * a tool call upstream. Keys compare after unescaping ("\u006dethod" is "method"). One pass;
 * string contents are skipped with indexOf.
 */
export function duplicateKey (text: string): string | undefined {
  // One entry per open container: the keys seen so far in an object, null for an array.
  const open: Array<Set<string> | null> = []
  let keyNext = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      let end = text.indexOf('"', i + 1)
      for (;;) {
        let slashes = 0
        while (text.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++
        if (slashes % 2 === 0) break
        end = text.indexOf('"', end + 1)
      }
      if (keyNext) {
        const raw = text.slice(i + 1, end)
        const key = raw.includes('\\') ? JSON.parse(text.slice(i, end + 1)) as string : raw
        const keys = open[open.length - 1] as Set<string>
        if (keys.has(key)) return key
        keys.add(key)
        keyNext = false
      }
      i = end
    } else if (c === 0x7b) { // {
      open.push(new Set())
      keyNext = true
    } else if (c === 0x5b) { // [
      open.push(null)
    } else if (c === 0x7d || c === 0x5d) { // } ]
      open.pop()
    } else if (c === 0x2c) { // , : in an object, a key follows
      keyNext = open[open.length - 1] !== null
    }
  }
  return undefined
}
