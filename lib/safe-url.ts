/**
 * A store's URL as it may be logged or printed: its password replaced by `***`. A string that
 * is not a URL is not echoed either (it could be a password pasted in the wrong place).
 */
export function withoutPassword (url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return '(not a URL)'
  }
}
