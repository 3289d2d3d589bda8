import { environmentProblems } from './checks-env.ts'
import { podProblems } from './checks-pods.ts'
import { probeRouteProblems } from './checks-routes.ts'
import { discoveryProblems, namespaceProblems, networkPolicyProblems, redisProblems, selectorProblems } from './checks-wiring.ts'
import type { K8sObject } from './kustomize-lite.ts'
import { schemaProblems } from './schema.ts'

/**
 * Every check on one rendered overlay, as readable lines naming the object and the fault; none
 * means it passed: the Kubernetes API schema (strict), then what no schema sees.
 */
export async function manifestProblems (objects: K8sObject[]): Promise<string[]> {
  return [
    ...await schemaProblems(objects),
    ...namespaceProblems(objects),
    ...selectorProblems(objects),
    ...networkPolicyProblems(objects),
    ...discoveryProblems(objects),
    ...redisProblems(objects),
    ...podProblems(objects),
    ...environmentProblems(objects),
    ...await probeRouteProblems(objects)
  ]
}
