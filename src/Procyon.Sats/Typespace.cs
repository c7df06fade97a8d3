namespace Procyon.Sats;

/// <summary>The named types of a module, which other types refer to by index.</summary>
public sealed class Typespace
{
    public static Typespace Empty { get; } = new([], new Dictionary<uint, string>());

    public Typespace(IReadOnlyList<AlgebraicType> types, IReadOnlyDictionary<uint, string> names)
    {
        Types = types;
        Names = names;
    }

    public IReadOnlyList<AlgebraicType> Types { get; }

    /// <summary>User-facing names of referenced types, by index.</summary>
    public IReadOnlyDictionary<uint, string> Names { get; }

    /// <summary>Follows references until a structural type is reached.</summary>
    public AlgebraicType Resolve(AlgebraicType type)
    {
        for (var hops = 0; type.Kind == TypeKind.Ref; hops++)
        {
            if (type.Reference >= Types.Count)
            {
                throw new InvalidDataException($"type reference {type.Reference} is outside the typespace ({Types.Count} types)");
            }
            if (hops > Types.Count)
            {
                throw new InvalidDataException($"type reference {type.Reference} refers only to other references");
            }
            type = Types[(int)type.Reference];
        }
        return type;
    }

    /// <summary>How a type is spelled in error messages and documentation, Rust-style.</summary>
    public string Describe(AlgebraicType type) => type.Kind switch
    {
        TypeKind.Ref => Names.TryGetValue(type.Reference, out var name) ? name : $"&{type.Reference}",
        TypeKind.Array when type.Special == SpecialType.Bytes => "bytes",
        TypeKind.Array => $"Vec<{Describe(type.Item!)}>",
        TypeKind.Sum when type.Special == SpecialType.Option => $"Option<{Describe(type.Elements[0].Type)}>",
        TypeKind.Product => type.Special switch
        {
            SpecialType.Unit => "()",
            SpecialType.Identity => "Identity",
            SpecialType.Timestamp => "Timestamp",
            SpecialType.TimeDuration => "TimeDuration",
            _ => "{ " + string.Join(", ", type.Elements.Select(e => $"{e.Name}: {Describe(e.Type)}")) + " }",
        },
        TypeKind.Sum => string.Join(" | ", type.Elements.Select(e => e.Type.Special == SpecialType.Unit ? e.Name : $"{e.Name}({Describe(e.Type)})")),
        TypeKind.String => "String",
        _ => type.Kind.ToString().ToLowerInvariant(),
    };
}
