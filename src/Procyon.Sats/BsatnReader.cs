using System.Buffers.Binary;
using System.Text;

namespace Procyon.Sats;

/// <summary>Reads BSATN: little-endian numbers, u32-length-prefixed strings and arrays.</summary>
public ref struct BsatnReader(ReadOnlySpan<byte> input)
{
    private ReadOnlySpan<byte> _input = input;

    public readonly int Remaining => _input.Length;

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if ((uint)count > (uint)_input.Length)
        {
            throw new InvalidDataException($"BSATN ended early: wanted {count} bytes, {_input.Length} left");
        }
        var bytes = _input[..count];
        _input = _input[count..];
        return bytes;
    }

    public byte ReadU8() => ReadBytes(1)[0];

    public bool ReadBool() => ReadU8() switch
    {
        0 => false,
        1 => true,
        var b => throw new InvalidDataException($"invalid BSATN bool byte {b}"),
    };

    public ushort ReadU16() => BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2));

    public uint ReadU32() => BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4));

    public ulong ReadU64() => BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8));

    public UInt128 ReadU128() => BinaryPrimitives.ReadUInt128LittleEndian(ReadBytes(16));

    /// <summary>A length prefix, checked against what is left so a bad length fails fast.</summary>
    public int ReadLength(int minimumElementSize = 1)
    {
        var length = ReadU32();
        if (minimumElementSize > 0 && length > (uint)(_input.Length / minimumElementSize))
        {
            throw new InvalidDataException($"BSATN length {length} exceeds the {_input.Length} bytes left");
        }
        return length > int.MaxValue ? throw new InvalidDataException($"BSATN length {length} is too large") : (int)length;
    }

    public string ReadString()
    {
        var bytes = ReadBytes(ReadLength());
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException("BSATN string is not valid UTF-8", e);
        }
    }

    internal static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
