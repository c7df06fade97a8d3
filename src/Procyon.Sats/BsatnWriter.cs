using System.Buffers;
using System.Buffers.Binary;

namespace Procyon.Sats;

/// <summary>Writes BSATN into a growable buffer.</summary>
public sealed class BsatnWriter
{
    private readonly ArrayBufferWriter<byte> _buffer;

    public BsatnWriter(int initialCapacity = 256) => _buffer = new ArrayBufferWriter<byte>(initialCapacity);

    public ReadOnlySpan<byte> WrittenSpan => _buffer.WrittenSpan;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.WrittenMemory;

    public int WrittenCount => _buffer.WrittenCount;

    public void Clear() => _buffer.ResetWrittenCount();

    public void WriteU8(byte value)
    {
        _buffer.GetSpan(1)[0] = value;
        _buffer.Advance(1);
    }

    public void WriteBool(bool value) => WriteU8(value ? (byte)1 : (byte)0);

    public void WriteU16(ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(Take(2), value);

    public void WriteU32(uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Take(4), value);

    public void WriteU64(ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), value);

    public void WriteU128(UInt128 value) => BinaryPrimitives.WriteUInt128LittleEndian(Take(16), value);

    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_buffer.GetSpan(bytes.Length));
        _buffer.Advance(bytes.Length);
    }

    public void WriteString(string value)
    {
        var length = BsatnReader.StrictUtf8.GetByteCount(value);
        WriteU32((uint)length);
        BsatnReader.StrictUtf8.GetBytes(value, _buffer.GetSpan(length));
        _buffer.Advance(length);
    }

    /// <summary>Returns a span of exactly <paramref name="size"/> bytes that is already counted as written.</summary>
    private Span<byte> Take(int size)
    {
        var span = _buffer.GetSpan(size)[..size];
        _buffer.Advance(size);
        return span;
    }
}
