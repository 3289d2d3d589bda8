/**
 * JSON Patch (RFC 6902) over plain JSON values: add, remove, replace and test, with JSON
 * Pointers (RFC 6901). What kustomize applies for a `patches` entry that is a list of
 * operations. Returns a patched copy; throws an Error naming the operation that cannot apply.
 */
export interface JsonPatchOperation { op: string, path: string, value?: unknown }

type Container = Record<string, unknown> | unknown[]

export function applyJsonPatch (document: unknown, operations: JsonPatchOperation[]): unknown {
  let result = structuredClone(document)
  operations.forEach((operation, index) => {
    const where = `operation ${index + 1} (${operation.op} ${operation.path})`
    if (typeof operation.path !== 'string') throw new Error(`${where}: no path`)
    const tokens = pointer(operation.path, where)
    if (tokens.length === 0) {
      if (operation.op === 'add' || operation.op === 'replace') result = structuredClone(operation.value)
      else throw new Error(`${where}: cannot ${operation.op} the whole document`)
      return
    }
    const parent = walk(result, tokens.slice(0, -1), where)
    const last = tokens.at(-1) as string
    switch (operation.op) {
      case 'add': add(parent, last, structuredClone(operation.value), where); break
      case 'remove': remove(parent, last, where); break
      case 'replace':
        remove(parent, last, where)
        add(parent, last, structuredClone(operation.value), where)
        break
      case 'test':
        if (JSON.stringify(get(parent, last, where)) !== JSON.stringify(operation.value)) throw new Error(`${where}: the value differs`)
        break
      default: throw new Error(`${where}: unknown op (add, remove, replace, test)`)
    }
  })
  return result
}

function pointer (path: string, where: string): string[] {
  if (path === '') return []
  if (!path.startsWith('/')) throw new Error(`${where}: a JSON Pointer starts with "/"`)
  return path.slice(1).split('/').map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'))
}

function walk (document: unknown, tokens: string[], where: string): Container {
  let node = document
  for (const token of tokens) node = get(asContainer(node, where), token, where)
  return asContainer(node, where)
}

function asContainer (node: unknown, where: string): Container {
  if (node === null || typeof node !== 'object') throw new Error(`${where}: the path goes through something that is not an object or a list`)
  return node as Container
}

function index (list: unknown[], token: string, where: string, allowEnd: boolean): number {
  if (allowEnd && token === '-') return list.length
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new Error(`${where}: ${JSON.stringify(token)} is not a list index`)
  const i = Number(token)
  if (i > list.length || (!allowEnd && i === list.length)) throw new Error(`${where}: index ${i} is past the end of the list (${list.length} items)`)
  return i
}

function get (parent: Container, token: string, where: string): unknown {
  if (Array.isArray(parent)) return parent[index(parent, token, where, false)]
  if (!Object.hasOwn(parent, token)) throw new Error(`${where}: there is no ${JSON.stringify(token)}`)
  return parent[token]
}

function add (parent: Container, token: string, value: unknown, where: string): void {
  if (Array.isArray(parent)) parent.splice(index(parent, token, where, true), 0, value)
  else parent[token] = value
}

function remove (parent: Container, token: string, where: string): void {
  if (Array.isArray(parent)) parent.splice(index(parent, token, where, false), 1)
  else if (Object.hasOwn(parent, token)) Reflect.deleteProperty(parent, token)
  else throw new Error(`${where}: there is no ${JSON.stringify(token)} to remove`)
}
