import { styleText } from 'node:util'
import type { Answer } from './client.ts'

type Style = Parameters<typeof styleText>[0]

/** How the walkthrough talks: headings, paragraphs, one line per request, the lesson. */
export interface Narrator {
  heading (step: number, total: number, title: string): void
  /** A paragraph, wrapped. */
  say (text: string): void
  /** A quieter line: what is going on behind the scenes. */
  note (text: string): void
  /** Verbatim lines (a token, a JSON payload), indented, not wrapped. */
  verbatim (lines: string[], style?: Style): void
  /** One request and its answer. */
  answer (answer: Answer): void
  lesson (text: string): void
  blank (): void
  /** Colours text when the terminal has colour. */
  paint (style: Style, text: string): string
}

export function createNarrator (write: (text: string) => void, colour: boolean, width = 86): Narrator {
  const paint = (style: Style, text: string): string => colour ? styleText(style, text) : text
  let seq = 0

  function wrap (text: string, indent: string, firstIndent = indent): string {
    const lines: string[] = []
    let line = firstIndent
    for (const word of text.split(/\s+/).filter((w) => w !== '')) {
      if (line.trim() !== '' && line.length + word.length + 1 > width) {
        lines.push(line)
        line = indent + word
      } else {
        line += (line.trim() === '' ? '' : ' ') + word
      }
    }
    if (line.trim() !== '') lines.push(line)
    return lines.join('\n')
  }

  return {
    paint,
    heading (step, total, title) {
      const text = `Step ${step} of ${total}: ${title}`
      write(`\n${paint(['bold', 'cyan'], text)}\n${paint('cyan', '─'.repeat(Math.min(text.length, width)))}\n`)
    },
    say (text) {
      write(`${wrap(text, '  ')}\n`)
    },
    note (text) {
      write(`${paint('gray', wrap(text, '  '))}\n`)
    },
    verbatim (lines, style) {
      for (const line of lines) write(`    ${style === undefined ? line : paint(style, line)}\n`)
    },
    answer (a) {
      seq++
      const [symbol, style]: [string, Style] = a.status >= 500 ? ['⚠', 'yellow'] : a.status >= 400 ? ['✘', 'red'] : ['✔', 'green']
      const verdict = a.status >= 400 ? `${a.status} ${a.reason ?? ''}` : `${a.status} ${a.status === 204 ? 'done' : 'accepted'}`
      const line = [
        String(seq).padStart(4),
        a.who.padEnd(6),
        `${a.method.padEnd(4)} ${a.path}`.padEnd(13),
        '→',
        (a.servedBy ?? 'balancer').padEnd(8),
        paint([style, 'bold'], `${symbol} ${verdict}`.padEnd(30)),
        paint('gray', `${a.ms.toFixed(1).padStart(6)} ms`)
      ].join(' ')
      write(`${line}\n`)
    },
    lesson (text) {
      write(`\n${paint(['bold', 'magenta'], wrap(text, '          ', '  Lesson:'))}\n`)
    },
    blank () {
      write('\n')
    }
  }
}
