using System.Text;
using System.Text.Json;

namespace Procyon.Cli;

/// <summary>One function of a database, as the bindings call it.</summary>
/// <param name="Parameters">In order, with the JSON Schema of each (from the server's OpenAPI document).</param>
/// <param name="Returns">The JSON Schema of the result; <c>{"type": "null"}</c> for none.</param>
internal sealed record BoundFunction(string Name, string Kind, IReadOnlyList<(string Name, JsonElement Schema)> Parameters, JsonElement Returns);

/// <summary>
/// What typed client bindings are generated from: a database's functions (its schema) and the
/// JSON Schemas of their parameters, results and named types (the server's OpenAPI document,
/// which spells out the JSON mapping: 64-bit integers as number or string, sum types as
/// <c>{"Variant": value}</c>, options as the value or null).
/// </summary>
internal sealed record BindingsModel(string Database, IReadOnlyList<BoundFunction> Functions, IReadOnlyList<(string Name, JsonElement Schema)> Types)
{
    public static async Task<BindingsModel> LoadAsync(ServerClient client, string database, CancellationToken cancellationToken)
    {
        var schema = await client.SendJsonAsync(HttpMethod.Get, ServerClient.DatabasePath(database, "/schema"), cancellationToken);
        var openApi = await client.SendJsonAsync(HttpMethod.Get, "/swagger/v1/swagger.json", cancellationToken);
        var prefix = $"{database}.";
        var types = openApi.GetProperty("components").GetProperty("schemas").EnumerateObject()
            .Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal))
            .Select(t => (t.Name[prefix.Length..], t.Value))
            .ToList();
        var paths = openApi.GetProperty("paths");
        var functions = schema.GetProperty("functions").EnumerateArray().Select(function =>
        {
            var name = function.GetProperty("name").GetString()!;
            var operation = paths.GetProperty($"/v1/databases/{database}/call/{name}").GetProperty("post");
            var body = operation.TryGetProperty("requestBody", out var request)
                ? request.GetProperty("content").GetProperty("application/json").GetProperty("schema").GetProperty("properties")
                : default;
            var parameters = function.GetProperty("params").EnumerateArray()
                .Select(p => p.GetProperty("name").GetString()!)
                .Select(p => (p, body.GetProperty(p)))
                .ToList();
            var returns = operation.GetProperty("responses").GetProperty("200").GetProperty("content").GetProperty("application/json").GetProperty("schema");
            return new BoundFunction(name, function.GetProperty("kind").GetString()!, parameters, returns);
        }).ToList();
        return new BindingsModel(database, functions, types);
    }

    /// <summary>The named type a <c>$ref</c> points to.</summary>
    public string RefName(JsonElement schema) => schema.GetProperty("$ref").GetString()!.Split('/')[^1][(Database.Length + 1)..];

    /// <summary><c>snake_case</c> or <c>kebab-case</c> as <c>PascalCase</c>.</summary>
    public static string Pascal(string name)
    {
        var pascal = new StringBuilder();
        foreach (var part in name.Split('_', '-', StringSplitOptions.RemoveEmptyEntries))
        {
            pascal.Append(char.ToUpperInvariant(part[0])).Append(part.AsSpan(1));
        }
        return pascal.Length == 0 || char.IsDigit(pascal[0]) ? "_" + pascal : pascal.ToString();
    }

    /// <summary>The variants of a sum type's schema (<c>oneOf</c>), each with its value's schema or null for a unit variant.</summary>
    public static IReadOnlyList<(string Name, JsonElement? Value)>? Variants(JsonElement schema)
    {
        if (!schema.TryGetProperty("oneOf", out var oneOf))
        {
            return null;
        }
        return oneOf.EnumerateArray().Select(variant =>
        {
            // A unit variant is {"V": null} or "V".
            var shape = variant.TryGetProperty("anyOf", out var either) ? either[0] : variant;
            var property = shape.GetProperty("properties").EnumerateObject().Single();
            return (property.Name, property.Value.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "null" ? (JsonElement?)null : property.Value);
        }).ToList();
    }

    /// <summary>The schema an option wraps (<c>anyOf [T, null]</c>), or null when it is no option.</summary>
    public static JsonElement? OptionOf(JsonElement schema) =>
        schema.TryGetProperty("anyOf", out var anyOf) && anyOf.GetArrayLength() == 2 && IsNull(anyOf[1]) ? anyOf[0] : null;

    public static bool IsNull(JsonElement schema) =>
        schema.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "null";

    /// <summary>The schema's <c>type</c>: one name, or both of <c>[integer|number, string]</c> joined with a comma.</summary>
    public static string? TypeName(JsonElement schema) =>
        !schema.TryGetProperty("type", out var type) ? null
        : type.ValueKind == JsonValueKind.String ? type.GetString()
        : string.Join(',', type.EnumerateArray().Select(t => t.GetString()));

    public static string? Format(JsonElement schema) => schema.TryGetProperty("format", out var format) ? format.GetString() : null;
}
