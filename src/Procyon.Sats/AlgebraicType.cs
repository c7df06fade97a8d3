namespace Procyon.Sats;

/// <summary>The BSATN tag of each type constructor; the Rust SDK uses the same numbers.</summary>
public enum TypeKind : byte
{
    Ref, Sum, Product, Array, String, Bool,
    I8, U8, I16, U16, I32, U32, I64, U64, I128, U128, F32, F64,
}

/// <summary>Types the JSON mapping treats specially, recognised by their shape.</summary>
public enum SpecialType : byte { None, Unit, Option, Bytes, Identity, Timestamp, TimeDuration, Uuid }

/// <summary>A field of a product or a variant of a sum.</summary>
public sealed record TypeElement(string? Name, AlgebraicType Type);

/// <summary>The type of a value. Immutable; primitives are shared instances.</summary>
public sealed class AlgebraicType
{
    internal const string IdentityField = "__identity__";
    internal const string TimestampField = "__timestamp_micros_since_unix_epoch__";
    internal const string TimeDurationField = "__time_duration_micros__";
    internal const string UuidField = "__uuid__";

    private static readonly AlgebraicType[] Primitives =
        Enum.GetValues<TypeKind>().Select(k => new AlgebraicType(k, [], null, 0)).ToArray();

    private Dictionary<string, int>? _indexByName;

    private AlgebraicType(TypeKind kind, IReadOnlyList<TypeElement> elements, AlgebraicType? item, uint reference)
    {
        Kind = kind;
        Elements = elements;
        Item = item;
        Reference = reference;
        Special = Classify();
    }

    public TypeKind Kind { get; }

    /// <summary>Fields of a product, variants of a sum; empty otherwise.</summary>
    public IReadOnlyList<TypeElement> Elements { get; }

    /// <summary>The element type of an array.</summary>
    public AlgebraicType? Item { get; }

    /// <summary>The typespace index of a <see cref="TypeKind.Ref"/>.</summary>
    public uint Reference { get; }

    public SpecialType Special { get; }

    /// <summary>
    /// The index of the element named <paramref name="name"/>, or -1. A lookup, so matching a JSON
    /// object to a struct costs time in proportion to its properties and fields, not their product.
    /// </summary>
    public int IndexOf(string name)
    {
        // Built on first use; threads racing here build equal maps and keep either.
        var byName = _indexByName;
        if (byName is null)
        {
            byName = new Dictionary<string, int>(Elements.Count, StringComparer.Ordinal);
            for (var i = 0; i < Elements.Count; i++)
            {
                if (Elements[i].Name is { } elementName)
                {
                    byName.TryAdd(elementName, i);
                }
            }
            _indexByName = byName;
        }
        return byName.GetValueOrDefault(name, -1);
    }

    public static AlgebraicType Primitive(TypeKind kind) =>
        kind is TypeKind.Ref or TypeKind.Sum or TypeKind.Product or TypeKind.Array
            ? throw new ArgumentException($"{kind} is not a primitive type", nameof(kind))
            : Primitives[(int)kind];

    public static AlgebraicType Product(IReadOnlyList<TypeElement> fields) => new(TypeKind.Product, fields, null, 0);

    public static AlgebraicType Sum(IReadOnlyList<TypeElement> variants) => new(TypeKind.Sum, variants, null, 0);

    public static AlgebraicType Array(AlgebraicType item) => new(TypeKind.Array, [], item, 0);

    public static AlgebraicType Ref(uint index) => new(TypeKind.Ref, [], null, index);

    public static AlgebraicType Unit { get; } = Product([]);

    public static AlgebraicType Option(AlgebraicType some) =>
        Sum([new TypeElement("some", some), new TypeElement("none", Unit)]);

    private SpecialType Classify()
    {
        switch (Kind)
        {
            case TypeKind.Array when Item is { Kind: TypeKind.U8 }:
                return SpecialType.Bytes;
            case TypeKind.Product when Elements.Count == 0:
                return SpecialType.Unit;
            case TypeKind.Product when Elements.Count == 1:
                var (name, type) = (Elements[0].Name, Elements[0].Type);
                return (name, type.Kind) switch
                {
                    (IdentityField, TypeKind.Array) when type.Special == SpecialType.Bytes => SpecialType.Identity,
                    (TimestampField, TypeKind.I64) => SpecialType.Timestamp,
                    (TimeDurationField, TypeKind.I64) => SpecialType.TimeDuration,
                    (UuidField, TypeKind.U128) => SpecialType.Uuid,
                    _ => SpecialType.None,
                };
            case TypeKind.Sum when Elements.Count == 2
                && Elements[0].Name == "some"
                && Elements[1].Name == "none"
                && Elements[1].Type.Special == SpecialType.Unit:
                return SpecialType.Option;
            default:
                return SpecialType.None;
        }
    }
}
