// Call forms generated from the JSON Schemas of the server's OpenAPI document: a field per
// parameter, fieldsets for structs, a select per enum, a checkbox for each option and lists
// that grow on demand. Each field returns { node, read }, where read() gives its JSON value.
"use strict";

const Forms = (() => {
  const make = (tag, props = {}, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children);
    return node;
  };

  const types = (schema) => [].concat(schema.type ?? []);

  // 64-bit and wider integers travel as a decimal string beyond 2^53 - 1; numbers may be "NaN".
  function number(text, integer) {
    const trimmed = text.trim();
    if (integer) return /^-?\d+$/.test(trimmed) && Number.isSafeInteger(Number(trimmed)) ? Number(trimmed) : trimmed;
    return trimmed !== "" && Number.isFinite(Number(trimmed)) ? Number(trimmed) : trimmed;
  }

  function placeholder(schema) {
    if (schema.format === "date-time") return "2026-01-01T00:00:00Z";
    if (schema.pattern === "^[0-9a-fA-F]{64}$") return "64 hex digits";
    return schema.description ?? schema.format ?? "";
  }

  function input(schema, path, integer) {
    const box = make("input", { placeholder: placeholder(schema) });
    box.dataset.path = path;
    if (schema.format === "date-time") box.value = new Date().toISOString();
    else if (integer || types(schema).includes("number")) box.value = "0";
    return { node: box, read: () => (integer || types(schema).includes("number") ? number(box.value, integer) : box.value) };
  }

  function labelled(label, field) {
    return { node: make("div", {}, make("label", { textContent: label }), field.node), read: field.read };
  }

  function build(resolve, raw, path, depth) {
    const schema = resolve(raw);
    if (depth > 32) return json(schema, path);
    const option = schema.anyOf?.length === 2 && types(schema.anyOf[1]).includes("null") ? schema.anyOf[0] : null;
    if (option) return optional(resolve, option, path, depth);
    if (schema.oneOf) return variants(resolve, schema, path, depth);
    const kinds = types(schema);
    if (kinds.includes("boolean")) {
      const box = make("input", { type: "checkbox" });
      box.dataset.path = path;
      return { node: box, read: () => box.checked };
    }
    if (kinds.includes("integer")) return input(schema, path, true);
    if (kinds.includes("number") || kinds.includes("string")) return input(schema, path, false);
    if (kinds.includes("object") && schema.properties) return struct(resolve, schema, path, depth);
    if (kinds.includes("array")) return list(resolve, schema, path, depth);
    if (kinds.includes("null")) return { node: make("span", { className: "muted", textContent: "()" }), read: () => null };
    return json(schema, path);
  }

  function struct(resolve, schema, path, depth) {
    const fields = Object.entries(schema.properties).map(([name, property]) =>
      [name, labelled(name, build(resolve, property, `${path}.${name}`, depth + 1))]);
    const node = make("fieldset", {}, ...fields.map(([, field]) => field.node));
    return { node, read: () => Object.fromEntries(fields.map(([name, field]) => [name, field.read()])) };
  }

  function list(resolve, schema, path, depth) {
    const items = [];
    const body = make("div");
    const add = make("button", { type: "button", textContent: "+ add" });
    add.dataset.path = `${path}+`;
    add.onclick = () => {
      const field = build(resolve, schema.items ?? {}, `${path}.${items.length}`, depth + 1);
      const remove = make("button", { type: "button", textContent: "remove" });
      const row = make("div", {}, field.node, remove);
      const entry = { field, row };
      remove.onclick = () => { items.splice(items.indexOf(entry), 1); row.remove(); };
      items.push(entry);
      body.append(row);
    };
    return { node: make("fieldset", {}, make("legend", { textContent: "list" }), body, add), read: () => items.map((item) => item.field.read()) };
  }

  function optional(resolve, schema, path, depth) {
    const set = make("input", { type: "checkbox" });
    set.dataset.path = `${path}?`;
    const body = make("div");
    let field = null;
    set.onchange = () => {
      field ??= build(resolve, schema, path, depth + 1);
      body.replaceChildren(...(set.checked ? [field.node] : []));
    };
    return { node: make("div", {}, make("label", {}, set, " set (unset is null)"), body), read: () => (set.checked ? field.read() : null) };
  }

  // A sum type: {"Variant": value}, or "Variant" for one without a value.
  function variants(resolve, schema, path, depth) {
    const choices = schema.oneOf.map((variant) => {
      const shape = variant.anyOf ? variant.anyOf[0] : variant;
      const [name, value] = Object.entries(shape.properties)[0];
      return { name, value: types(value).includes("null") && !value.anyOf ? null : value };
    });
    const pick = make("select", {}, ...choices.map((choice) => make("option", { value: choice.name, textContent: choice.name })));
    pick.dataset.path = path;
    const body = make("div");
    let field = null;
    const show = () => {
      const choice = choices.find((c) => c.name === pick.value);
      field = choice.value ? build(resolve, choice.value, `${path}.${choice.name}`, depth + 1) : null;
      body.replaceChildren(...(field ? [field.node] : []));
    };
    pick.onchange = show;
    show();
    return { node: make("div", {}, pick, body), read: () => (field ? { [pick.value]: field.read() } : pick.value) };
  }

  function json(schema, path) {
    const text = make("textarea", { value: "null" });
    text.dataset.path = path;
    return { node: text, read: () => JSON.parse(text.value) };
  }

  /** The form of a function's parameters from its request body's schema (named arguments). */
  function forParameters(resolve, parameters, body) {
    const fields = parameters.map((p) => [p.name, labelled(`${p.name}: ${p.type}`, build(resolve, body?.properties?.[p.name] ?? {}, p.name, 0))]);
    return { node: make("div", {}, ...fields.map(([, field]) => field.node)), read: () => Object.fromEntries(fields.map(([name, field]) => [name, field.read()])) };
  }

  return { forParameters, make };
})();
