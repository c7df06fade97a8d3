namespace Procyon.Sats;

/// <summary>Decodes types from BSATN, as modules write them into their description.</summary>
public static class AlgebraicTypeReader
{
    /// <summary>Deeper nesting is refused so a hostile description cannot exhaust the host's stack.</summary>
    public const int MaxDepth = 64;

    public static AlgebraicType Read(ref BsatnReader reader) => Read(ref reader, 0);

    private static AlgebraicType Read(ref BsatnReader reader, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new InvalidDataException($"type is nested deeper than {MaxDepth} levels");
        }
        var tag = reader.ReadU8();
        return (TypeKind)tag switch
        {
            TypeKind.Ref => AlgebraicType.Ref(reader.ReadU32()),
            TypeKind.Sum => AlgebraicType.Sum(ReadElements(ref reader, depth)),
            TypeKind.Product => AlgebraicType.Product(ReadElements(ref reader, depth)),
            TypeKind.Array => AlgebraicType.Array(Read(ref reader, depth + 1)),
            var kind when tag <= (byte)TypeKind.F64 => AlgebraicType.Primitive(kind),
            _ => throw new InvalidDataException($"unknown type tag {tag}"),
        };
    }

    private static TypeElement[] ReadElements(ref BsatnReader reader, int depth)
    {
        var elements = new TypeElement[reader.ReadLength()];
        for (var i = 0; i < elements.Length; i++)
        {
            string? name = reader.ReadU8() switch
            {
                0 => reader.ReadString(),
                1 => null,
                var t => throw new InvalidDataException($"invalid option tag {t} for an element name"),
            };
            elements[i] = new TypeElement(name, Read(ref reader, depth + 1));
        }
        return elements;
    }
}
