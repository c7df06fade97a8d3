using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Procyon.Storage.Tables;

/// <summary>
/// Postgres's binary <c>numeric</c> as exact decimal text. Read raw because neither decimal (28
/// digits) nor BigInteger (no fraction) holds every value, and a sequential reader reads a value once.
/// </summary>
internal static class NumericText
{
    private const ushort Negative = 0x4000;
    private const ushort NaN = 0xC000;
    private const ushort Infinity = 0xD000;
    private const ushort NegativeInfinity = 0xF000;

    /// <param name="raw">ndigits, weight, sign, dscale (16 bits each), then ndigits base-10000 digits, most significant first.</param>
    public static string Format(ReadOnlySpan<byte> raw)
    {
        var words = new short[raw.Length / 2];
        for (var i = 0; i < words.Length; i++)
        {
            words[i] = BinaryPrimitives.ReadInt16BigEndian(raw[(2 * i)..]);
        }
        var (digits, weight, sign, scale) = (words[0], words[1], (ushort)words[2], words[3]);
        switch (sign)
        {
            case NaN:
                return "NaN";
            case Infinity:
                return "Infinity";
            case NegativeInfinity:
                return "-Infinity";
        }
        // The group at index i weighs 10000^(weight - i); past the stored ones, groups are zero.
        int Group(int i) => i >= 0 && i < digits ? words[4 + i] : 0;
        var text = new StringBuilder(sign == Negative ? "-" : "");
        text.Append(weight < 0 ? "0" : Group(0).ToString(CultureInfo.InvariantCulture));
        for (var i = 1; i <= weight; i++)
        {
            text.Append(Group(i).ToString("D4", CultureInfo.InvariantCulture));
        }
        if (scale > 0)
        {
            var fraction = new StringBuilder();
            for (var i = weight + 1; fraction.Length < scale; i++)
            {
                fraction.Append(Group(i).ToString("D4", CultureInfo.InvariantCulture));
            }
            text.Append('.').Append(fraction, 0, scale);
        }
        return text.ToString();
    }
}
