import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import t, { type Test } from 'tap'
import { parseAllDocuments } from 'yaml'
import { applyJsonPatch } from './json-patch.ts'
import { nameHash, renderKustomization, type K8sObject } from './kustomize-lite.ts'
import { overlayNames, stage } from './staging.ts'

/** A kustomization tree of its own, written from `files` (path: text), removed after the test. */
function tree (t: Test, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'kustomize-lite-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  return dir
}

const configMap = (data: Record<string, string>): K8sObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'any' }, data })

t.test('the name hash is kustomize\'s, byte for byte', async (t) => {
  // What kubectl kustomize (kustomize v5.5.0) named these, on this machine.
  t.equal(nameHash(configMap({ K: 'v' })), '276ch85d82')
  t.equal(nameHash(configMap({ PORT: '3000', AUTH_MODE: 'memory' })), 'g299ct7gck', 'keys sorted as Go sorts a map')
  t.equal(nameHash({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'jwt' }, type: 'Opaque', data: { 'jwt-secret': Buffer.from('abc<>&"').toString('base64') } }), 'k5h2f24b8k', 'a Secret, with its type')
  t.equal(nameHash(configMap({ A: '<&>' })), nameHash({ ...configMap({ A: '<&>' }), metadata: { name: 'other' } }), 'the name is not part of it (kustomize looks it up under a key that does not exist)')
  t.not(nameHash(configMap({ A: '1' })), nameHash(configMap({ A: '2' })))
})

t.test('a long Secret value is written in lines of 70, as kustomize writes it, and hashed so', async (t) => {
  const dir = tree(t, { 'kustomization.yaml': `secretGenerator:\n  - name: s\n    literals: [k=${'abcdefghij'.repeat(6)}]\n` })
  const [secret] = renderKustomization(dir)
  // kubectl kustomize's output for the same kustomization.
  t.same(secret?.data, { k: 'YWJjZGVmZ2hpamFiY2RlZmdoaWphYmNkZWZnaGlqYWJjZGVmZ2hpamFiY2RlZmdoaWphYm\nNkZWZnaGlq\n' })
  t.equal(secret?.metadata.name, 's-79dg988bt6')
  t.equal(Buffer.from((secret?.data as Record<string, string>).k ?? '', 'base64').toString(), 'abcdefghij'.repeat(6), 'the newlines are not part of the value')
})

t.test('env files are read as kustomize reads them', async (t) => {
  const dir = tree(t, {
    'kustomization.yaml': 'configMapGenerator:\n  - name: env\n    envs: [app.env]\n    literals: ["QUOTED=\'x y\'", "B=literal wins"]\n',
    'app.env': '\uFEFF# a comment\n\n   INDENTED=1\nB=2\nEQUALS=a=b\nEMPTY=\nTRAILING=value # not a comment\r\n'
  })
  const [cm] = renderKustomization(dir)
  t.same(cm?.data, { INDENTED: '1', B: 'literal wins', EQUALS: 'a=b', EMPTY: '', TRAILING: 'value # not a comment', QUOTED: 'x y' })
  t.match(cm?.metadata.name, /^env-[a-z0-9]{10}$/)
  const fromShell = tree(t, { 'kustomization.yaml': 'configMapGenerator:\n  - name: env\n    envs: [app.env]\n', 'app.env': 'A=1\nHOME\n' })
  t.throws(() => renderKustomization(fromShell), /app\.env:2: "HOME" has no "=": kustomize would read its value from the environment of whoever renders/)
})

t.test('what kustomize-lite does not know is refused by name, never rendered wrong', async (t) => {
  const refused = (files: Record<string, string>): void => { renderKustomization(tree(t, files)) }
  t.throws(() => { refused({ 'kustomization.yaml': 'commonLabels: {a: b}\n' }) }, /does not know "commonLabels"/)
  t.throws(() => { refused({ 'kustomization.yaml': 'configMapGenerator:\n  - name: x\n    options: {disableNameSuffixHash: true}\n' }) }, /configMapGenerator x: kustomize-lite does not know "options"/)
  t.throws(() => { refused({ 'kustomization.yaml': 'resources: [cm.yaml]\npatches:\n  - path: p.yaml\n', 'cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n', 'p.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n' }) }, /JSON patches \(a list of operations\) only/)
  t.throws(() => { refused({ 'kustomization.yaml': 'resources: [missing.yaml]\n' }) }, /resources: missing\.yaml does not exist/)
  t.throws(() => { refused({ 'kustomization.yaml': 'configMapGenerator:\n  - name: x\n    behavior: merge\n    literals: [A=1]\n' }) }, /behavior merge, but no generated ConfigMap x comes before it/)
  t.throws(() => { refused({ 'kustomization.yaml': 'secretGenerator:\n  - name: s\n    files: [jwt-secret]\n' }) }, /files: .*jwt-secret does not exist/, 'a secret file the user has not made yet: named, as kustomize names it')
  t.throws(() => { refused({ 'kustomization.yaml': 'resources: [cm.yaml]\npatches:\n  - target: {kind: ConfigMap, name: b}\n    patch: "[{op: remove, path: /data/k}]"\n', 'cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n' }) }, /no ConfigMap named b to patch/)
})

t.test('generators merge across levels, and the hashed names are followed, in their namespace only', async (t) => {
  const dir = tree(t, {
    'base/kustomization.yaml': 'resources: [deploy.yaml, ns.yaml]\nconfigMapGenerator:\n  - name: env\n    literals: [A=1, B=2]\n',
    'base/ns.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata: {name: placeholder}\n',
    'base/deploy.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          envFrom: [{configMapRef: {name: env}}]\n          env: [{name: S, valueFrom: {secretKeyRef: {name: s, key: k}}}, {name: O, valueFrom: {configMapKeyRef: {name: other, key: k}}}]\n      volumes: [{name: v, secret: {secretName: s}}]\n',
    'overlay/kustomization.yaml': 'namespace: here\nresources: [../base]\nconfigMapGenerator:\n  - name: env\n    behavior: merge\n    literals: [B=3]\nsecretGenerator:\n  - name: s\n    literals: [k=v]\n'
  })
  const objects = renderKustomization(join(dir, 'overlay'))
  const env = objects.find((o) => o.kind === 'ConfigMap')
  const secret = objects.find((o) => o.kind === 'Secret')
  t.same(env?.data, { A: '1', B: '3' }, 'merged, the overlay winning')
  t.equal(env?.metadata.name, `env-${nameHash(env as K8sObject)}`, 'one hash, of the merged content')
  t.same(secret?.data, { k: Buffer.from('v').toString('base64') })
  t.same(objects.find((o) => o.kind === 'Namespace')?.metadata, { name: 'here' }, 'the Namespace object takes the namespace\'s name')
  const pod = (objects.find((o) => o.kind === 'Deployment') as unknown as { spec: { template: { spec: any } } }).spec.template.spec
  t.equal(pod.containers[0].envFrom[0].configMapRef.name, env?.metadata.name)
  t.equal(pod.containers[0].env[0].valueFrom.secretKeyRef.name, secret?.metadata.name)
  t.equal(pod.containers[0].env[1].valueFrom.configMapKeyRef.name, 'other', 'a name nothing generated stays')
  t.equal(pod.volumes[0].secret.secretName, secret?.metadata.name)
  t.ok(objects.every((o) => o.kind === 'Namespace' || o.metadata.namespace === 'here'))
})

t.test('JSON patch (RFC 6902)', async (t) => {
  const document = { a: { list: [1, 2], 'x/y': 1 } }
  t.same(applyJsonPatch(document, [{ op: 'add', path: '/a/list/-', value: 3 }, { op: 'add', path: '/a/list/0', value: 0 }]), { a: { list: [0, 1, 2, 3], 'x/y': 1 } })
  t.same(applyJsonPatch(document, [{ op: 'replace', path: '/a/x~1y', value: 2 }, { op: 'remove', path: '/a/list/1' }]), { a: { list: [1], 'x/y': 2 } })
  t.same(document, { a: { list: [1, 2], 'x/y': 1 } }, 'the input is left alone')
  t.throws(() => applyJsonPatch(document, [{ op: 'remove', path: '/a/nothing' }]), /operation 1 \(remove \/a\/nothing\): there is no "nothing" to remove/)
  t.throws(() => applyJsonPatch(document, [{ op: 'replace', path: '/a/list/2', value: 0 }]), /index 2 is past the end of the list/)
  t.throws(() => applyJsonPatch(document, [{ op: 'test', path: '/a/list/0', value: 9 }]), /operation 1 \(test \/a\/list\/0\): the value differs/)
  t.throws(() => applyJsonPatch(document, [{ op: 'move', path: '/a' }]), /unknown op/)
})

// The real kustomize, where it is installed: kubectl has carried one since 1.14. Not needed in
// CI (the renderer above is what the checks use); where it runs it must agree with every overlay
// and every fixture.
const kubectl = spawnSync('kubectl', ['kustomize', '--help'], { encoding: 'utf8', timeout: 30_000 })
t.test('kubectl kustomize renders every overlay and fixture the same', { skip: kubectl.status === 0 ? false : 'no kubectl here' }, async (t) => {
  const staged = stage()
  t.teardown(staged.remove)
  const dirs = [...overlayNames().map((name) => staged.overlay(name)), ...['wrong-selector', 'missing-probe', 'unset-variable'].map((name) => join(staged.dir, 'test/kubernetes/fixtures', name))]
  const key = (o: K8sObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`
  for (const dir of dirs) {
    const run = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 30_000 })
    t.equal(run.status, 0, `${dir}: ${run.stderr}`)
    const real = new Map(parseAllDocuments(run.stdout).map((d) => d.toJS() as K8sObject).map((o) => [key(o), o]))
    const ours = new Map(renderKustomization(dir).map((o) => [key(o), o]))
    t.same([...ours.keys()].sort(), [...real.keys()].sort(), `${dir}: the same objects, by name (hashes included)`)
    for (const [name, object] of ours) t.ok(isDeepStrictEqual(object, real.get(name)), `${dir}: ${name} is the same`)
  }
})
