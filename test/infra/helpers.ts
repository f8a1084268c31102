import type { Template } from 'aws-cdk-lib/assertions';

/** Characters an unresolved `Ref`/`Fn::GetAtt` is assumed to take once deployed. */
export const TOKEN_SIZE = 100;

/** Longest values of the pseudo parameters (aws-iso-b, ap-southeast-7 and the like). */
const PSEUDO_PARAMETER_SIZE: Record<string, number> = {
  'AWS::Partition': 10,
  'AWS::Region': 14,
  'AWS::AccountId': 12,
  'AWS::URLSuffix': 20,
};

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, Json>;
  readonly DeletionPolicy?: string;
  readonly UpdateReplacePolicy?: string;
}

export interface PolicyStatement {
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: Json;
  readonly Condition?: Json;
}

/** Logical ID → resource, for every resource of `type`. */
export function resourcesOf(template: Template, type: string): Record<string, CfnResource> {
  return template.findResources(type) as Record<string, CfnResource>;
}

export function only<T>(items: Record<string, T>): [string, T] {
  const entries = Object.entries(items);
  if (entries.length !== 1) throw new Error(`expected exactly one, got ${entries.length}`);
  return entries[0] as [string, T];
}

export function asArray<T>(value: T | T[]): T[] {
  return Array.isArray(value) ? value : [value];
}

/** Size of what a `Ref` to a resource of the given type resolves to. */
const REF_SIZE_BY_TYPE: Record<string, number> = {
  // A REST API id has 10 characters.
  'AWS::ApiGateway::RestApi': 10,
  // An alias ARN: arn, partition, region, account, a generated function name and the alias.
  'AWS::Lambda::Alias': 150,
};

/** Estimates `Ref`s by the type of their target when a template is given. */
export type RefSize = (logicalId: string) => number;

export function refSizeOf(template: Template): RefSize {
  const resources = template.toJSON().Resources as Record<string, { Type: string }>;
  return (id) => REF_SIZE_BY_TYPE[resources[id]?.Type ?? ''] ?? TOKEN_SIZE;
}

/** Size a value takes once CloudFormation resolves it (tokens estimated). */
export function resolvedSize(value: Json, refSize: RefSize = () => TOKEN_SIZE): number {
  if (typeof value === 'string') return value.length;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    if (typeof value.Ref === 'string')
      return PSEUDO_PARAMETER_SIZE[value.Ref] ?? refSize(value.Ref);
    if ('Fn::GetAtt' in value) return TOKEN_SIZE;
    const join = value['Fn::Join'];
    if (Array.isArray(join)) {
      const [separator, parts] = join as [string, Json[]];
      return (
        parts.reduce<number>((sum, part) => sum + resolvedSize(part, refSize), 0) +
        separator.length * Math.max(0, parts.length - 1)
      );
    }
  }
  return JSON.stringify(value).length;
}

/** Size of a function's environment as Lambda counts it (keys plus values). */
export function environmentSize(fn: CfnResource): number {
  const variables = (fn.Properties?.Environment as { Variables?: Record<string, Json> } | undefined)
    ?.Variables;
  return Object.entries(variables ?? {}).reduce(
    (sum, [key, value]) => sum + key.length + resolvedSize(value),
    0,
  );
}

/** A JSON document with every token replaced by a string of its estimated size. */
export function resolvedDocument(value: Json, refSize?: RefSize): Json {
  if (Array.isArray(value)) return value.map((item) => resolvedDocument(item, refSize));
  if (value !== null && typeof value === 'object') {
    if ('Ref' in value || 'Fn::GetAtt' in value || 'Fn::Join' in value) {
      return 'x'.repeat(resolvedSize(value, refSize));
    }
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, resolvedDocument(v, refSize)]),
    );
  }
  return value;
}

/** Environment variables of a function resource. */
export function environmentOf(fn: CfnResource): Record<string, Json> {
  return (
    (fn.Properties?.Environment as { Variables?: Record<string, Json> } | undefined)?.Variables ??
    {}
  );
}

/** The function whose logical ID starts with `prefix` (the construct path, without hash). */
export function functionByPrefix(template: Template, prefix: string): [string, CfnResource] {
  const functions = resourcesOf(template, 'AWS::Lambda::Function');
  return only(
    Object.fromEntries(Object.entries(functions).filter(([id]) => id.startsWith(prefix))),
  );
}

/** Logical IDs of the roles referenced by a policy resource's `Roles`. */
function policyRoles(policy: CfnResource): string[] {
  const roles = (policy.Properties?.Roles ?? []) as Json[];
  return roles.flatMap((role) =>
    role !== null && typeof role === 'object' && !Array.isArray(role) && 'Ref' in role
      ? [role.Ref as string]
      : [],
  );
}

/** Every policy statement attached to `roleId` (inline and managed policies of the template). */
export function statementsOfRole(template: Template, roleId: string): PolicyStatement[] {
  const statements: PolicyStatement[] = [];
  for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
    for (const policy of Object.values(resourcesOf(template, type))) {
      if (!policyRoles(policy).includes(roleId)) continue;
      const document = policy.Properties?.PolicyDocument as unknown as {
        Statement: PolicyStatement[];
      };
      statements.push(...document.Statement);
    }
  }
  return statements;
}

/** Every policy statement of the template's IAM policies (not resource policies). */
export function allIdentityStatements(template: Template): PolicyStatement[] {
  return ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy'].flatMap((type) =>
    Object.values(resourcesOf(template, type)).flatMap(
      (policy) =>
        (policy.Properties!.PolicyDocument as unknown as { Statement: PolicyStatement[] })
          .Statement,
    ),
  );
}

/** Logical ID of the role a function runs as. */
export function roleOf(fn: CfnResource): string {
  const role = fn.Properties?.Role as { 'Fn::GetAtt': [string, string] };
  return role['Fn::GetAtt'][0];
}

export function actionsOf(statement: PolicyStatement): string[] {
  return asArray(statement.Action);
}
