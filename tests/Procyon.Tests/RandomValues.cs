using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Procyon.Sats;

namespace Procyon.Tests;

/// <summary>
/// Random values of a module's types, as the JSON the server itself writes, so a value that
/// survives a round trip comes back as the very same text.
/// </summary>
internal sealed class RandomValues(Random random, Typespace typespace)
{
    private const int MaxDepth = 4;

    public JsonNode? Next(AlgebraicType type, int depth = 0)
    {
        var resolved = typespace.Resolve(type);
        return resolved.Special switch
        {
            SpecialType.Unit => null,
            SpecialType.Bytes => Convert.ToHexStringLower(Bytes(random.Next(0, 12))),
            SpecialType.Identity => Convert.ToHexStringLower(Bytes(32)),
            SpecialType.Timestamp => JsonValues.TryFormatTimestamp(random.NextInt64(-62_135_596_800_000_000, 253_402_300_799_000_000)),
            SpecialType.Uuid => UuidValues.Format(BinaryPrimitives.ReadUInt128BigEndian(Bytes(16))),
            SpecialType.TimeDuration => Integer(random.NextInt64(0, long.MaxValue) - random.NextInt64(0, long.MaxValue)),
            SpecialType.Option => random.Next(3) == 0 ? null : Next(resolved.Elements[0].Type, depth + 1),
            _ => resolved.Kind switch
            {
                TypeKind.Bool => random.Next(2) == 1,
                TypeKind.I8 => random.Next(sbyte.MinValue, sbyte.MaxValue + 1),
                TypeKind.U8 => random.Next(0, byte.MaxValue + 1),
                TypeKind.I16 => random.Next(short.MinValue, short.MaxValue + 1),
                TypeKind.U16 => random.Next(0, ushort.MaxValue + 1),
                TypeKind.I32 => random.Next(int.MinValue, int.MaxValue),
                TypeKind.U32 => random.NextInt64(0, uint.MaxValue + 1L),
                TypeKind.I64 => Integer(BitConverter.ToInt64(Bytes(8))),
                TypeKind.U64 => Integer(BitConverter.ToUInt64(Bytes(8))),
                TypeKind.I128 => Integer(BitConverter.ToInt64(Bytes(8)) * (Int128)BitConverter.ToUInt64(Bytes(8))),
                TypeKind.U128 => Integer(BitConverter.ToUInt64(Bytes(8)) * (UInt128)BitConverter.ToUInt64(Bytes(8))),
                TypeKind.F32 => Float((float)(random.NextDouble() * Math.Pow(10, random.Next(-10, 10)) - 0.5)),
                TypeKind.F64 => random.Next(10) == 0 ? "NaN" : JsonValue.Create(BitConverter.Int64BitsToDouble(random.NextInt64(0, 0x7FEFFFFFFFFFFFFF))),
                TypeKind.String => Text(),
                TypeKind.Array => new JsonArray(Enumerable.Range(0, depth >= MaxDepth ? 0 : random.Next(0, 4)).Select(_ => Next(resolved.Item!, depth + 1)).ToArray()),
                TypeKind.Product => new JsonObject(resolved.Elements.Select(e => KeyValuePair.Create(e.Name!, Next(e.Type, depth + 1)))),
                TypeKind.Sum => Variant(resolved, depth),
                _ => throw new NotSupportedException(resolved.Kind.ToString()),
            },
        };
    }

    private JsonObject Variant(AlgebraicType sum, int depth)
    {
        var variant = sum.Elements[random.Next(sum.Elements.Count)];
        return new JsonObject { [variant.Name!] = Next(variant.Type, depth + 1) };
    }

    /// <summary>Numbers while JavaScript can hold them exactly, strings beyond.</summary>
    private static JsonNode Integer<T>(T value) where T : System.Numerics.IBinaryInteger<T>
    {
        var text = value.ToString(null, CultureInfo.InvariantCulture);
        var safe = System.Numerics.BigInteger.Abs(System.Numerics.BigInteger.Parse(text, CultureInfo.InvariantCulture)) <= JsonValues.MaxSafeInteger;
        return safe ? JsonNode.Parse(text)! : JsonValue.Create(text);
    }

    private static JsonNode Float(float value) => JsonValue.Create(value);

    private string Text()
    {
        var text = new StringBuilder();
        for (var i = random.Next(0, 10); i > 0; i--)
        {
            text.Append(random.Next(4) switch
            {
                0 => ((char)random.Next('a', 'z' + 1)).ToString(),
                1 => ((char)random.Next(0x20, 0x7f)).ToString(),
                2 => ((char)random.Next(0xa0, 0xd7ff)).ToString(),
                _ => char.ConvertFromUtf32(random.Next(0x1f600, 0x1f650)),
            });
        }
        return text.ToString();
    }

    private byte[] Bytes(int count)
    {
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }
}
