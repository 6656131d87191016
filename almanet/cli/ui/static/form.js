// Forms built from the JSON schemas that pydantic writes for a procedure's payload: one field per
// property, read back as the JSON value to send. What a form cannot express is a JSON text field.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function resolve(schema, root) {
  let seen = 0;
  while (schema && schema.$ref && seen++ < 32) {
    const path = schema.$ref.replace(/^#\//, "").split("/");
    let target = root;
    for (const part of path) target = target ? target[part] : undefined;
    schema = target ? { ...target, ...withoutRef(schema) } : {};
  }
  if (schema && Array.isArray(schema.allOf) && schema.allOf.length === 1) {
    return resolve({ ...schema.allOf[0], ...withoutKey(schema, "allOf") }, root);
  }
  return schema || {};
}

function withoutRef(schema) { return withoutKey(schema, "$ref"); }
function withoutKey(schema, key) {
  const copy = { ...schema };
  delete copy[key];
  return copy;
}

// anyOf [X, null] is an optional X; anything else with anyOf/oneOf is edited as JSON.
function nullable(schema, root) {
  const options = schema.anyOf || schema.oneOf;
  if (!Array.isArray(options)) return null;
  const other = options.filter((o) => resolve(o, root).type !== "null");
  if (other.length === 1 && other.length < options.length) {
    return { ...resolve(other[0], root), title: schema.title, description: schema.description, default: schema.default };
  }
  return null;
}

// A field: {node, read()} where read() returns the value, or undefined for "left empty".
export function field(schema, root, name, required) {
  schema = resolve(schema, root);
  const optional = nullable(schema, root);
  if (optional) return field(optional, root, name, false);
  const label = schema.title || name || "payload";
  const hint = schema.description ? el("span", { class: "hint", text: schema.description }) : null;
  const path = name || "payload";

  if (Array.isArray(schema.enum)) {
    const select = el("select", { name: path },
      required ? null : el("option", { value: "", text: "—" }),
      schema.enum.map((v, i) => el("option", { value: String(i), text: typeof v === "string" ? v : JSON.stringify(v) })));
    if (schema.default !== undefined) select.value = String(schema.enum.findIndex((v) => v === schema.default));
    return {
      node: el("label", { class: "field" }, el("span", { class: "name", text: label }), select, hint),
      read: () => (select.value === "" ? undefined : schema.enum[Number(select.value)]),
    };
  }
  if (schema.const !== undefined) {
    return { node: el("div", { class: "field muted", text: `${label} = ${JSON.stringify(schema.const)}` }), read: () => schema.const };
  }
  switch (schema.type) {
    case "string": {
      const input = el("input", { name: path, type: "text", placeholder: schema.format || "text" });
      if (typeof schema.default === "string") input.value = schema.default;
      return {
        node: el("label", { class: "field" }, el("span", { class: "name", text: label }), input, hint),
        read: () => (input.value === "" && !required ? undefined : input.value),
      };
    }
    case "integer":
    case "number": {
      const input = el("input", { name: path, type: "number", step: schema.type === "integer" ? "1" : "any" });
      if (typeof schema.default === "number") input.value = String(schema.default);
      return {
        node: el("label", { class: "field" }, el("span", { class: "name", text: label }), input, hint),
        read: () => {
          if (input.value === "") return required ? null : undefined;
          return Number(input.value);
        },
      };
    }
    case "boolean": {
      const input = el("input", { name: path, type: "checkbox" });
      input.checked = schema.default === true;
      return {
        node: el("label", { class: "field inline" }, input, el("span", { class: "name", text: label }), hint),
        read: () => input.checked,
      };
    }
    case "null":
      return { node: el("div", { class: "field muted", text: `${label}: null` }), read: () => null };
    case "object":
      if (schema.properties) return objectField(schema, root, name, label, hint);
      break;
    case "array":
      if (schema.items && typeof schema.items === "object" && !Array.isArray(schema.items)) {
        return arrayField(schema, root, name, label, hint);
      }
      break;
  }
  return jsonField(schema, label, hint, path, required);
}

function objectField(schema, root, name, label, hint) {
  const required = new Set(schema.required || []);
  const children = Object.entries(schema.properties).map(([key, sub]) => [
    key,
    field(sub, root, name ? `${name}.${key}` : key, required.has(key)),
  ]);
  const box = el("fieldset", { class: "object" }, el("legend", { text: label }), hint, children.map(([, f]) => f.node));
  return {
    node: box,
    read: () => {
      const value = {};
      for (const [key, f] of children) {
        const v = f.read();
        if (v !== undefined) value[key] = v;
      }
      return value;
    },
  };
}

function arrayField(schema, root, name, label, hint) {
  const items = [];
  const list = el("div", { class: "items" });
  const add = () => {
    const item = field(schema.items, root, `${name || "payload"}[${items.length}]`, true);
    const row = el("div", { class: "item" }, item.node);
    const entry = { item, row };
    row.append(el("button", {
      type: "button", class: "small", title: "remove", text: "×",
      onclick: () => { items.splice(items.indexOf(entry), 1); row.remove(); },
    }));
    items.push(entry);
    list.append(row);
  };
  const box = el("fieldset", { class: "array" }, el("legend", { text: `${label} (list)` }), hint, list,
    el("button", { type: "button", class: "small add", text: "+ add", onclick: add }));
  return { node: box, read: () => items.map((e) => e.item.read()) };
}

function jsonField(schema, label, hint, path, required) {
  const area = el("textarea", { name: path, rows: "2", spellcheck: "false", placeholder: "JSON" });
  if (schema.default !== undefined) area.value = JSON.stringify(schema.default);
  return {
    node: el("label", { class: "field" }, el("span", { class: "name", text: `${label} (JSON)` }), area, hint),
    read: () => {
      if (area.value.trim() === "") return required ? null : undefined;
      try {
        return JSON.parse(area.value);
      } catch (error) {
        throw new Error(`${path} is not valid JSON: ${error.message}`);
      }
    },
  };
}
