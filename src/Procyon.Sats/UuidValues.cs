using System.Buffers.Binary;

namespace Procyon.Sats;

/// <summary>
/// A <c>Uuid</c>'s value is the <c>u128</c> whose big-endian bytes are the RFC's byte order (as
/// SpacetimeDB's <c>__uuid__: u128</c>), so its BSATN is those bytes reversed and numeric order is
/// Postgres's <c>uuid</c> order. <see cref="Guid"/>, which Npgsql and the JSON text go through,
/// keeps its first three groups little-endian: it is built from the RFC bytes with <c>bigEndian</c>.
/// </summary>
public static class UuidValues
{
    public static Guid ToGuid(UInt128 value)
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(bytes, value);
        return new Guid(bytes, bigEndian: true);
    }

    public static UInt128 FromGuid(Guid guid)
    {
        Span<byte> bytes = stackalloc byte[16];
        guid.TryWriteBytes(bytes, bigEndian: true, out _);
        return BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    /// <summary>Hyphenated lowercase: <c>0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b</c>.</summary>
    public static string Format(UInt128 value) => ToGuid(value).ToString("D");

    /// <summary>The hyphenated form only (hex digits in either case), nothing around it.</summary>
    public static bool TryParse(string text, out UInt128 value)
    {
        if (text.Length == 36 && Guid.TryParseExact(text, "D", out var guid))
        {
            value = FromGuid(guid);
            return true;
        }
        value = default;
        return false;
    }
}
