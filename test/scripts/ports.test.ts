import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import t from 'tap'
import { checkPort, freePort, portRefusal } from '../../scripts/lib/ports.ts'

t.test('checkPort: free, or the code the OS gave for a port someone holds', async (t) => {
  t.same(await checkPort(await freePort()), { free: true })
  const holder = createServer()
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { holder.close() })
  const held = await checkPort((holder.address() as { port: number }).port)
  t.match(held, { free: false, code: 'EADDRINUSE' })
})

t.test('portRefusal: a taken port, a privileged one and anything else are told apart', async (t) => {
  t.equal(portRefusal(8080, { code: 'EADDRINUSE', message: 'listen EADDRINUSE: address already in use 127.0.0.1:8080' }, 1024),
    'port 8080 is taken: stop what uses it, or choose another with --port')
  // What listen() gives a normal user for port 1 (Linux: below net.ipv4.ip_unprivileged_port_start).
  t.equal(portRefusal(1, { code: 'EACCES', message: 'listen EACCES: permission denied 127.0.0.1:1' }, 1024),
    'port 1 needs privileges (below 1024): choose --port 1024 or above, e.g. 8080')
  t.equal(portRefusal(80, { code: 'EACCES', message: 'listen EACCES: permission denied 127.0.0.1:80' }, 100),
    'port 80 needs privileges (below 100): choose --port 100 or above, e.g. 8080', 'the bound in force, not always 1024')
  t.equal(portRefusal(5000, { code: 'EACCES', message: 'listen EACCES: permission denied 127.0.0.1:5000' }, 1024),
    'port 5000 is not open to this user (EACCES: a security policy forbids it): choose another with --port, e.g. 8080',
    'above the bound, EACCES is a policy (SELinux, a sandbox), not the port number')
  t.equal(portRefusal(8080, { code: 'EADDRNOTAVAIL', message: 'listen EADDRNOTAVAIL: address not available 10.9.9.9:8080' }, 1024),
    'port 8080 cannot be used (listen EADDRNOTAVAIL: address not available 10.9.9.9:8080): choose another with --port, e.g. 8080')
})

t.test('freePort: a port the OS never hands out on its own (below the ephemeral range), so a child on port 0 cannot be given it first', async (t) => {
  // Seen in npm test: the test took a port for `npm start --port`, the OS then gave that same
  // port to an app server listening on port 0, and the balancer found it taken.
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number) as [number]
  const ports = await Promise.all(Array.from({ length: 20 }, async () => await freePort()))
  t.ok(ports.every((p) => p >= 1024 && p < low), `every port below ${low}: ${ports.join(', ')}`)
  for (const port of ports.slice(0, 3)) t.same(await checkPort(port), { free: true }, `${port} is free`)
  t.ok(new Set(ports).size >= 15, `spread out: ${new Set(ports).size} distinct of 20`)
})
