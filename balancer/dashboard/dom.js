// Small DOM helpers. Text only: paths and names come from the network, so nothing here
// parses HTML.
/* global document */

export const $ = (id) => document.getElementById(id)

export function h (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.className = value
    else if (key === 'text') node.textContent = value
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value)
    else node.setAttribute(key, value)
  }
  for (const child of children) if (child != null) node.append(child)
  return node
}

export function clock (t) {
  return new Date(t).toTimeString().slice(0, 8)
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
