import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

/** A response to check against the OpenAPI document. */
export interface ResponseToValidate {
  readonly method: string;
  /**
   * The documented path, e.g. `/v1/tokens/{profile}`. Omit it and give `path` to have it
   * matched; a path no template matches must be the document's `x-unmatched-path` answer.
   */
  readonly pathTemplate?: string;
  /** The concrete request path (no query), used when `pathTemplate` is omitted. */
  readonly path?: string;
  readonly status: number;
  /** Response headers, any case; a fetch `Headers` works too. */
  readonly headers?: Headers | Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The parsed JSON body, or its text. */
  readonly body: unknown;
}

export interface ValidationResult {
  readonly valid: boolean;
  readonly errors: readonly string[];
}

export interface OpenApiValidator {
  validate(response: ResponseToValidate): ValidationResult;
  /** Throws with every problem listed when the response does not match the document. */
  assertValid(response: ResponseToValidate): void;
  /** The template a concrete path matches, if any. */
  matchPath(path: string): string | undefined;
  readonly pathTemplates: readonly string[];
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const DOCUMENT_URL = new URL('../../../openapi/openapi.json', import.meta.url);
const COMPONENTS_ID = 'urn:openapi:components';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

export function loadOpenApiDocument(): JsonObject {
  return asObject(JSON.parse(readFileSync(DOCUMENT_URL, 'utf8')), 'document');
}

/**
 * Compiles the document's response schemas with ajv (JSON Schema 2020-12, as OpenAPI 3.1 uses)
 * and checks status, required headers, content type and body of a response against them.
 */
export function createOpenApiValidator(
  document: JsonObject = loadOpenApiDocument(),
): OpenApiValidator {
  const doc = asObject(rewriteSchemaRefs(document), 'document');
  const ajv = new Ajv2020({ allErrors: true, strict: true, validateFormats: false });
  const components = asObject(doc.components ?? {}, 'components');
  ajv.addSchema({ $id: COMPONENTS_ID, $defs: components.schemas ?? {} });
  const compiled = new Map<Json, ValidateFunction>();
  const compile = (schema: Json): ValidateFunction => {
    let validate = compiled.get(schema);
    if (!validate) {
      validate = ajv.compile(asObject(schema, 'schema'));
      compiled.set(schema, validate);
    }
    return validate;
  };

  const paths = asObject(doc.paths ?? {}, 'paths');
  const pathTemplates = Object.keys(paths);
  const matchers = pathTemplates.map((template) => ({
    template,
    regex: new RegExp(
      `^${template
        .split(/\{[^}]+\}/)
        .map(escapeRegex)
        .join('[^/]+')}$`,
    ),
  }));
  const matchPath = (path: string) => matchers.find((m) => m.regex.test(path))?.template;

  // Compile everything up front so a broken document fails at once, not in the middle of a run.
  for (const template of pathTemplates) {
    const item = asObject(resolve(doc, paths[template] ?? null), template);
    for (const method of METHODS) {
      const operation = item[method];
      if (operation === undefined) continue;
      const responses = asObject(asObject(operation, method).responses ?? {}, 'responses');
      for (const response of Object.values(responses)) schemasOf(doc, response).forEach(compile);
    }
  }

  const validate = (response: ResponseToValidate): ValidationResult => {
    const errors: string[] = [];
    const method = response.method.toLowerCase();
    const template =
      response.pathTemplate ?? (response.path === undefined ? undefined : matchPath(response.path));
    const label = `${response.method.toUpperCase()} ${template ?? response.path ?? '?'} → ${response.status}`;

    let responseObject: Json | undefined;
    if (template === undefined) {
      responseObject = doc['x-unmatched-path'];
    } else if (paths[template] === undefined) {
      return { valid: false, errors: [`${label}: path ${template} is not in the document`] };
    } else {
      const item = asObject(resolve(doc, paths[template] ?? null), template);
      const operation = item[method];
      if (operation === undefined) {
        responseObject = item['x-method-not-allowed'];
      } else {
        const responses = asObject(asObject(operation, method).responses ?? {}, 'responses');
        const status = String(response.status);
        responseObject = responses[status] ?? responses[`${status[0]}XX`] ?? responses.default;
      }
    }
    if (responseObject === undefined) {
      return { valid: false, errors: [`${label}: status not documented`] };
    }
    const documented = asObject(resolve(doc, responseObject), 'response');

    const headers = normaliseHeaders(response.headers);
    const declared = asObject(documented.headers ?? {}, 'headers');
    for (const [name, headerRef] of Object.entries(declared)) {
      const header = asObject(resolve(doc, headerRef), name);
      const value = headers.get(name.toLowerCase());
      if (value === undefined) {
        if (header.required === true) errors.push(`${label}: header ${name} is missing`);
        continue;
      }
      if (header.schema !== undefined) {
        const check = compile(header.schema);
        if (!check(value)) errors.push(`${label}: header ${name}: ${describe(check)}`);
      }
    }

    const content =
      documented.content === undefined ? undefined : asObject(documented.content, 'content');
    if (content === undefined) {
      if (response.body !== undefined && response.body !== '') {
        errors.push(`${label}: a body where the document has none`);
      }
      return { valid: errors.length === 0, errors };
    }
    const mediaType = Object.keys(content)[0] ?? 'application/json';
    const contentType = headers.get('content-type');
    if (contentType !== undefined && !contentType.toLowerCase().startsWith(mediaType)) {
      errors.push(`${label}: content-type ${contentType}, documented ${mediaType}`);
    }
    const schema = asObject(content[mediaType] ?? {}, mediaType).schema;
    let body = response.body;
    if (typeof body === 'string' && mediaType.endsWith('json')) {
      try {
        body = JSON.parse(body);
      } catch {
        errors.push(`${label}: body is not JSON`);
        return { valid: false, errors };
      }
    }
    if (schema !== undefined) {
      const check = compile(schema);
      if (!check(body)) errors.push(`${label}: body ${describe(check)}`);
    }
    return { valid: errors.length === 0, errors };
  };

  return {
    validate,
    assertValid(response) {
      const result = validate(response);
      if (!result.valid)
        throw new Error(`Response does not match openapi.json:\n${result.errors.join('\n')}`);
    },
    matchPath,
    pathTemplates,
  };
}

/** Points `#/components/schemas/X` at the components schema registered with ajv. */
function rewriteSchemaRefs(value: Json): Json {
  if (Array.isArray(value)) return value.map(rewriteSchemaRefs);
  if (value === null || typeof value !== 'object') return value;
  const out: JsonObject = {};
  for (const [key, child] of Object.entries(value)) {
    out[key] =
      key === '$ref' && typeof child === 'string' && child.startsWith('#/components/schemas/')
        ? `${COMPONENTS_ID}#/$defs/${child.slice('#/components/schemas/'.length)}`
        : rewriteSchemaRefs(child);
  }
  return out;
}

/** Follows a local `$ref` (responses, headers, parameters) through the document. */
function resolve(doc: JsonObject, value: Json, depth = 0): Json {
  if (depth > 10 || value === null || typeof value !== 'object' || Array.isArray(value))
    return value;
  const target = value.$ref;
  if (typeof target !== 'string' || !target.startsWith('#/')) return value;
  let node: Json = doc;
  for (const raw of target.slice(2).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !(key in node)) {
      throw new Error(`openapi.json: unresolved $ref ${target}`);
    }
    node = node[key] ?? null;
  }
  return resolve(doc, node, depth + 1);
}

function schemasOf(doc: JsonObject, response: Json): Json[] {
  const documented = asObject(resolve(doc, response), 'response');
  const schemas: Json[] = [];
  for (const header of Object.values(asObject(documented.headers ?? {}, 'headers'))) {
    const schema = asObject(resolve(doc, header), 'header').schema;
    if (schema !== undefined) schemas.push(schema);
  }
  for (const media of Object.values(asObject(documented.content ?? {}, 'content'))) {
    const schema = asObject(media, 'media type').schema;
    if (schema !== undefined) schemas.push(schema);
  }
  return schemas;
}

function normaliseHeaders(headers: ResponseToValidate['headers']): Map<string, string> {
  const out = new Map<string, string>();
  if (headers === undefined) return out;
  if (headers instanceof Headers) {
    headers.forEach((value, name) => {
      out.set(name.toLowerCase(), value);
    });
    return out;
  }
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out.set(name.toLowerCase(), typeof value === 'string' ? value : value.join(', '));
  }
  return out;
}

function describe(validate: ValidateFunction): string {
  return (validate.errors ?? [])
    .map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${paramsOf(e.params)}`)
    .join('; ');
}

function paramsOf(params: Record<string, unknown>): string {
  const values = Object.values(params);
  return values.length === 0 ? '' : ` (${values.map((v) => JSON.stringify(v)).join(', ')})`;
}

function asObject(value: unknown, what: string): JsonObject {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`openapi.json: ${what} is not an object`);
  }
  return value as JsonObject;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
