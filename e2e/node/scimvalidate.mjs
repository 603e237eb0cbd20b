// scimvalidate.mjs FILE: validates every SCIM response body in FILE (a JSON
// array of {name, status, body}) with SCIMMY, an independent implementation
// of the RFC 7643 schemas and RFC 7644 messages, and prints
// {"checked": N, "failures": [...]} (exit 0; the Go test decides).
//
// A resource passes when SCIMMY coerces it as an outbound resource of its
// schema ("out": read-only attributes allowed, required ones present,
// types right) AND the coerced value keeps every attribute the server sent
// (SCIMMY drops attributes its schema does not define: a dropped attribute
// is reported). A ListResponse passes when SCIMMY accepts it and each of
// its resources passes; an error body when SCIMMY's ErrorResponse accepts
// its status and scimType pair (RFC 7644 §3.12) and schemas is exactly the
// Error message's. /Schemas resources are compared attribute by attribute
// with SCIMMY's own definitions of the same schemas.
import fs from "node:fs";
import SCIMMY from "scimmy";

SCIMMY.Schemas.declare(SCIMMY.Schemas.EnterpriseUser.definition);
SCIMMY.Schemas.User.extend(SCIMMY.Schemas.EnterpriseUser.definition, false);

const exchanges = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const failures = [];
let checked = 0;

const schemaClass = {
  "urn:ietf:params:scim:schemas:core:2.0:User": SCIMMY.Schemas.User,
  "urn:ietf:params:scim:schemas:core:2.0:Group": SCIMMY.Schemas.Group,
  "urn:ietf:params:scim:schemas:core:2.0:ResourceType": SCIMMY.Schemas.ResourceType,
  "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig": SCIMMY.Schemas.ServiceProviderConfig,
};
const definitions = {
  "urn:ietf:params:scim:schemas:core:2.0:User": SCIMMY.Schemas.User.definition,
  "urn:ietf:params:scim:schemas:core:2.0:Group": SCIMMY.Schemas.Group.definition,
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": SCIMMY.Schemas.EnterpriseUser.definition,
};

// dropped lists the paths of `sent` that are missing from `kept`.
function dropped(sent, kept, path = "") {
  const out = [];
  if (sent === null || typeof sent !== "object") return out;
  for (const [k, v] of Object.entries(sent)) {
    const key = Object.keys(kept ?? {}).find((x) => x.toLowerCase() === k.toLowerCase());
    if (key === undefined) {
      if (!(Array.isArray(v) && v.length === 0)) out.push(path + k);
      continue;
    }
    if (Array.isArray(v)) v.forEach((e, i) => out.push(...dropped(e, kept[key]?.[i], `${path}${k}[${i}].`)));
    else if (typeof v === "object") out.push(...dropped(v, kept[key], `${path}${k}.`));
  }
  return out;
}

function checkResource(name, res) {
  checked++;
  const core = (res.schemas ?? []).find((s) => schemaClass[s] || s === "urn:ietf:params:scim:schemas:core:2.0:Schema");
  if (!core) return failures.push(`${name}: no known core schema in ${JSON.stringify(res.schemas)}`);
  if (core === "urn:ietf:params:scim:schemas:core:2.0:Schema") return checkSchema(name, res);
  try {
    const kept = JSON.parse(JSON.stringify(new schemaClass[core](res, "out")));
    for (const p of dropped(res, kept)) failures.push(`${name}: attribute ${p} is not in SCIMMY's ${core}`);
  } catch (e) {
    failures.push(`${name}: ${e.message}`);
  }
}

const same = ["type", "multiValued", "mutability", "returned", "uniqueness"];

function checkSchema(name, res) {
  const def = definitions[res.id];
  if (!def) return failures.push(`${name}: SCIMMY has no schema ${res.id}`);
  const theirs = JSON.parse(JSON.stringify(def.describe())).attributes;
  const compare = (ours, theirsList, where) => {
    for (const a of ours) {
      const t = theirsList.find((x) => x.name.toLowerCase() === a.name.toLowerCase());
      if (!t) { failures.push(`${name}: ${where}${a.name} is not an attribute of SCIMMY's ${res.id}`); continue; }
      for (const f of same) {
        // RFC 7643 §8.7.1 leaves some "returned" and "uniqueness" choices to the provider.
        if (f !== "returned" && f !== "uniqueness" && a[f] !== t[f]) failures.push(`${name}: ${where}${a.name}.${f} is ${a[f]}, SCIMMY says ${t[f]}`);
      }
      if (a.subAttributes) compare(a.subAttributes, t.subAttributes ?? [], `${where}${a.name}.`);
    }
  };
  checked++;
  compare(res.attributes ?? [], theirs, "");
}

for (const x of exchanges) {
  const { name, status, body } = x;
  if (status === 204 || status === 304) { if (body !== null) failures.push(`${name}: ${status} with a body`); continue; }
  if (body === null || typeof body !== "object") { failures.push(`${name}: status ${status} without a JSON body`); continue; }
  if (status >= 400) {
    checked++;
    if (JSON.stringify(body.schemas) !== JSON.stringify(["urn:ietf:params:scim:api:messages:2.0:Error"])) failures.push(`${name}: error schemas ${JSON.stringify(body.schemas)}`);
    if (body.status !== String(status)) failures.push(`${name}: error status ${JSON.stringify(body.status)} for HTTP ${status}`);
    // SCIMMY's ErrorResponse knows RFC 7644 §3.12's codes; 405, 429 and 503 are HTTP's own.
    if (![405, 429, 503].includes(status)) {
      try { new SCIMMY.Messages.ErrorResponse({ status: body.status, scimType: body.scimType, detail: body.detail }); }
      catch (e) { failures.push(`${name}: ${e.message}`); }
    }
    continue;
  }
  if ((body.schemas ?? []).includes("urn:ietf:params:scim:api:messages:2.0:ListResponse")) {
    checked++;
    try {
      const lr = new SCIMMY.Messages.ListResponse(body);
      if (lr.totalResults !== body.totalResults || !Number.isInteger(body.startIndex) || body.itemsPerPage !== body.Resources.length)
        failures.push(`${name}: ListResponse counts do not add up`);
    } catch (e) { failures.push(`${name}: ListResponse: ${e.message}`); }
    (body.Resources ?? []).forEach((r, i) => checkResource(`${name} Resources[${i}]`, r));
    continue;
  }
  checkResource(name, body);
}
console.log(JSON.stringify({ checked, failures }));
