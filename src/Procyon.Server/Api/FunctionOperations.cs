using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using Procyon.Runtime;
using Procyon.Sats;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace Procyon.Server.Api;

/// <summary>
/// Adds one operation per published function to the OpenAPI document, built from the module's
/// description each time the document is requested, so a publish shows up at once. Request
/// bodies use the named-argument form; each module's named types become components
/// <c>{db}.{Type}</c>.
/// </summary>
internal sealed class FunctionOperations(ModuleRegistry registry) : IDocumentFilter
{
    public void Apply(OpenApiDocument document, DocumentFilterContext context)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        document.Tags ??= new HashSet<OpenApiTag>();
        foreach (var module in registry.All)
        {
            document.Tags.Add(new OpenApiTag { Name = module.Database, Description = $"Functions of database '{module.Database}' (module sha256 {module.Sha256[..12]}…)" });
            var schemas = new ModuleSchemas(module, document);
            foreach (var function in module.Description.Functions)
            {
                var item = new OpenApiPathItem();
                item.AddOperation(HttpMethod.Post, Operation(module, function, schemas, document));
                document.Paths[$"/v1/databases/{module.Database}/call/{function.Name}"] = item;
            }
            schemas.CompleteComponents();
        }
    }

    private static OpenApiOperation Operation(LoadedModule module, FunctionDescription function, ModuleSchemas schemas, OpenApiDocument document)
    {
        var typespace = module.Description.Typespace;
        var parameters = function.Parameters.Elements;
        var signature = string.Join(", ", parameters.Select(p => $"{p.Name}: {typespace.Describe(p.Type)}"));
        return new OpenApiOperation
        {
            OperationId = $"{module.Database}.{function.Name}",
            Summary = $"{function.Name}({signature}) -> {typespace.Describe(function.ReturnType)}",
            Description = $"Calls {function.KindName} `{function.Name}`. The body is an object of named arguments (shown) or an array of them in order.",
            Tags = new HashSet<OpenApiTagReference> { new(module.Database, document) },
            // A function without parameters takes no body.
            RequestBody = parameters.Count == 0 ? null : new OpenApiRequestBody
            {
                Required = true,
                Content = new Dictionary<string, IOpenApiMediaType>
                {
                    ["application/json"] = new OpenApiMediaType
                    {
                        Schema = schemas.Arguments(function.Parameters),
                        Example = new Examples(typespace).Arguments(parameters),
                    },
                },
            },
            Responses = new OpenApiResponses
            {
                ["200"] = new OpenApiResponse
                {
                    Description = $"The return value: {typespace.Describe(function.ReturnType)}",
                    Content = new Dictionary<string, IOpenApiMediaType> { ["application/json"] = new OpenApiMediaType { Schema = schemas.For(function.ReturnType) } },
                },
                ["400"] = Problem("Bad arguments: the detail names the parameter path, the expected type and what was given"),
                ["404"] = Problem("Unknown database or function"),
                ["500"] = Problem("The module trapped (a panic message is included)"),
                ["503"] = Problem("Overloaded; retry after the Retry-After header"),
                ["504"] = Problem("The call exceeded its CPU deadline"),
            },
        };
    }

    private static OpenApiResponse Problem(string description) => new()
    {
        Description = description,
        Content = new Dictionary<string, IOpenApiMediaType> { ["application/problem+json"] = new OpenApiMediaType { Schema = new OpenApiSchema { Type = JsonSchemaType.Object } } },
    };

    /// <summary>JSON Schemas of one module's types, following the JSON mapping in the README.</summary>
    private sealed class ModuleSchemas(LoadedModule module, OpenApiDocument document)
    {
        private readonly Typespace _typespace = module.Description.Typespace;

        /// <summary>Components referenced but not yet filled in.</summary>
        private readonly Queue<(string Id, AlgebraicType Type)> _pending = new();

        public IOpenApiSchema Arguments(AlgebraicType parameters) => new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Properties = parameters.Elements.ToDictionary(p => p.Name!, p => For(p.Type)),
            Required = parameters.Elements.Where(p => _typespace.Resolve(p.Type).Special != SpecialType.Option).Select(p => p.Name!).ToHashSet(),
            AdditionalPropertiesAllowed = false,
        };

        public IOpenApiSchema For(AlgebraicType type)
        {
            if (type.Kind == TypeKind.Ref)
            {
                var id = $"{module.Database}.{_typespace.Describe(type)}";
                if (document.Components!.Schemas!.TryAdd(id, new OpenApiSchema()))
                {
                    _pending.Enqueue((id, type));
                }
                return new OpenApiSchemaReference(id, document);
            }
            return type.Special switch
            {
                SpecialType.Unit => new OpenApiSchema { Type = JsonSchemaType.Null },
                SpecialType.Bytes => Text("hex digits, optionally after 0x", "^(0x)?([0-9a-fA-F]{2})*$"),
                SpecialType.Identity => Text("an identity: 64 hex digits", "^[0-9a-fA-F]{64}$"),
                SpecialType.Timestamp => new OpenApiSchema { Type = JsonSchemaType.String | JsonSchemaType.Integer, Format = "date-time", Description = "RFC 3339, or microseconds since the Unix epoch" },
                SpecialType.TimeDuration => new OpenApiSchema { Type = JsonSchemaType.Integer | JsonSchemaType.String, Description = "microseconds" },
                SpecialType.Uuid => new OpenApiSchema
                {
                    Type = JsonSchemaType.String,
                    Format = "uuid",
                    Pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                    Description = "a UUID: 8-4-4-4-12 hex digits, written in lowercase",
                },
                SpecialType.Option => new OpenApiSchema { AnyOf = [For(type.Elements[0].Type), new OpenApiSchema { Type = JsonSchemaType.Null }] },
                _ => type.Kind switch
                {
                    TypeKind.Bool => new OpenApiSchema { Type = JsonSchemaType.Boolean },
                    TypeKind.String => new OpenApiSchema { Type = JsonSchemaType.String },
                    TypeKind.I8 or TypeKind.U8 or TypeKind.I16 or TypeKind.U16 or TypeKind.I32 or TypeKind.U32 => SmallInteger(type.Kind),
                    TypeKind.I64 or TypeKind.U64 or TypeKind.I128 or TypeKind.U128 => new OpenApiSchema
                    {
                        Type = JsonSchemaType.Integer | JsonSchemaType.String,
                        Format = type.Kind.ToString().ToLowerInvariant(),
                        Description = "a number, or a decimal string; written as a string beyond ±(2^53−1)",
                    },
                    TypeKind.F32 or TypeKind.F64 => new OpenApiSchema
                    {
                        Type = JsonSchemaType.Number | JsonSchemaType.String,
                        Format = type.Kind == TypeKind.F32 ? "float" : "double",
                        Description = "a number, or \"NaN\", \"Infinity\", \"-Infinity\"",
                    },
                    TypeKind.Array => new OpenApiSchema { Type = JsonSchemaType.Array, Items = For(type.Item!) },
                    TypeKind.Product => new OpenApiSchema
                    {
                        Type = JsonSchemaType.Object,
                        Properties = type.Elements.ToDictionary(e => e.Name!, e => For(e.Type)),
                        Required = type.Elements.Where(e => _typespace.Resolve(e.Type).Special != SpecialType.Option).Select(e => e.Name!).ToHashSet(),
                        AdditionalPropertiesAllowed = false,
                    },
                    TypeKind.Sum => new OpenApiSchema { OneOf = type.Elements.Select(Variant).ToList<IOpenApiSchema>(), Description = "{\"Variant\": value}; a variant without a value may also be given as \"Variant\"" },
                    _ => throw new InvalidOperationException($"no schema for {type.Kind}"),
                },
            };
        }

        /// <summary>
        /// Fills in the components the operations referenced, and those they reference in turn: a
        /// loop, not recursion, so a long chain of named types cannot exhaust the stack.
        /// </summary>
        public void CompleteComponents()
        {
            while (_pending.TryDequeue(out var component))
            {
                document.Components!.Schemas![component.Id] = For(_typespace.Resolve(component.Type));
            }
        }

        private IOpenApiSchema Variant(TypeElement variant)
        {
            var tagged = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Properties = new Dictionary<string, IOpenApiSchema> { [variant.Name!] = For(variant.Type) },
                Required = new HashSet<string> { variant.Name! },
                AdditionalPropertiesAllowed = false,
            };
            return _typespace.Resolve(variant.Type).Special == SpecialType.Unit
                ? new OpenApiSchema { AnyOf = [tagged, new OpenApiSchema { Type = JsonSchemaType.String, Enum = [variant.Name!] }] }
                : tagged;
        }

        private static OpenApiSchema Text(string description, string pattern) =>
            new() { Type = JsonSchemaType.String, Pattern = pattern, Description = description };

        private static OpenApiSchema SmallInteger(TypeKind kind)
        {
            var (minimum, maximum) = kind switch
            {
                TypeKind.I8 => (sbyte.MinValue, sbyte.MaxValue),
                TypeKind.U8 => (byte.MinValue, byte.MaxValue),
                TypeKind.I16 => (short.MinValue, short.MaxValue),
                TypeKind.U16 => (ushort.MinValue, ushort.MaxValue),
                TypeKind.I32 => (int.MinValue, int.MaxValue),
                _ => (0L, (long)uint.MaxValue),
            };
            return new OpenApiSchema
            {
                Type = JsonSchemaType.Integer,
                Format = kind.ToString().ToLowerInvariant(),
                Minimum = minimum.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Maximum = maximum.ToString(System.Globalization.CultureInfo.InvariantCulture),
            };
        }
    }

    /// <summary>
    /// Small values for Swagger UI's "Try it out". Beyond <see cref="ShallowDepth"/> options are
    /// null, arrays empty and enums take a variant without a value when they have one; after
    /// <see cref="Budget"/> values in all, the rest are null. However recursive or wide the types,
    /// an example stays small.
    /// </summary>
    private sealed class Examples(Typespace typespace)
    {
        private const int ShallowDepth = 3;
        private const int Budget = 256;

        private int _left = Budget;

        public JsonObject Arguments(IReadOnlyList<TypeElement> parameters) =>
            new(parameters.Select(p => KeyValuePair.Create(p.Name!, Value(p.Type, 0))));

        private JsonNode? Value(AlgebraicType type, int depth)
        {
            if (--_left < 0)
            {
                return null;
            }
            var resolved = typespace.Resolve(type);
            var shallow = depth >= ShallowDepth;
            return resolved.Special switch
            {
                SpecialType.Unit => null,
                SpecialType.Bytes => "00ff",
                SpecialType.Identity => new string('0', 64),
                SpecialType.Timestamp => "2026-01-01T00:00:00.000000Z",
                SpecialType.TimeDuration => 1_000_000,
                SpecialType.Uuid => "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                SpecialType.Option => shallow ? null : Value(resolved.Elements[0].Type, depth + 1),
                _ => resolved.Kind switch
                {
                    TypeKind.Bool => true,
                    TypeKind.String => "text",
                    TypeKind.F32 or TypeKind.F64 => 1.5,
                    TypeKind.Array => shallow ? new JsonArray() : new JsonArray(Value(resolved.Item!, depth + 1)),
                    TypeKind.Product => new JsonObject(resolved.Elements.Select(e => KeyValuePair.Create(e.Name!, Value(e.Type, depth + 1)))),
                    TypeKind.Sum => Variant(resolved, shallow, depth),
                    _ => 1,
                },
            };
        }

        private JsonObject Variant(AlgebraicType sum, bool shallow, int depth)
        {
            var variant = shallow
                ? sum.Elements.FirstOrDefault(v => typespace.Resolve(v.Type).Special == SpecialType.Unit) ?? sum.Elements[0]
                : sum.Elements[0];
            return new JsonObject { [variant.Name!] = Value(variant.Type, depth + 1) };
        }
    }
}
