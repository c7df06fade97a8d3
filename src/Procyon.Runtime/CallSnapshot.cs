using System.IO.Compression;
using Wasmtime;

namespace Procyon.Runtime;

/// <summary>
/// A procedure call suspended in <c>sleep_until</c>, complete: Asyncify has unwound the wasm stack
/// into linear memory, so the memory, the mutable globals and the call's own inputs are all there
/// is. The memory is kept as its non-zero 4 KiB chunks; the whole is compressed with zlib.
/// </summary>
internal sealed class CallSnapshot
{
    private const byte Version = 1;
    private const int Chunk = 4096;
    private const long End = -1;

    private CallSnapshot(uint functionId, long timestampMicros, byte[] arguments, long memoryLength, List<(ValueKind Kind, long Bits)> globals, List<(long Offset, byte[] Bytes)> chunks)
    {
        FunctionId = functionId;
        TimestampMicros = timestampMicros;
        Arguments = arguments;
        MemoryLength = memoryLength;
        Globals = globals;
        Chunks = chunks;
    }

    public uint FunctionId { get; }

    /// <summary>The call's <c>ctx.timestamp</c> when it started.</summary>
    public long TimestampMicros { get; }

    /// <summary>The call's BSATN arguments.</summary>
    public byte[] Arguments { get; }

    public long MemoryLength { get; }

    /// <summary>The exported mutable globals' values, in export-name order.</summary>
    public List<(ValueKind Kind, long Bits)> Globals { get; }

    public List<(long Offset, byte[] Bytes)> Chunks { get; }

    /// <summary>Writes the state of a suspended instance.</summary>
    public static byte[] Write(Memory memory, IReadOnlyList<Global> globals, uint functionId, long timestampMicros, ReadOnlySpan<byte> arguments)
    {
        using var output = new MemoryStream();
        using (var zlib = new ZLibStream(output, CompressionLevel.Fastest, leaveOpen: true))
        using (var writer = new BinaryWriter(zlib))
        {
            writer.Write(Version);
            writer.Write(functionId);
            writer.Write(timestampMicros);
            writer.Write(arguments.Length);
            writer.Write(arguments);
            var length = memory.GetLength();
            writer.Write(length);
            writer.Write(globals.Count);
            foreach (var global in globals)
            {
                writer.Write((byte)global.Kind);
                writer.Write(global.GetValue() switch
                {
                    int value => value,
                    long value => value,
                    float value => BitConverter.SingleToInt32Bits(value),
                    double value => BitConverter.DoubleToInt64Bits(value),
                    var other => throw new InvalidOperationException($"a global of kind {global.Kind} ({other}) cannot be saved"),
                });
            }
            for (long offset = 0; offset < length; offset += Chunk)
            {
                var chunk = memory.GetSpan(offset, (int)Math.Min(Chunk, length - offset));
                if (chunk.ContainsAnyExcept((byte)0))
                {
                    writer.Write(offset);
                    writer.Write(chunk);
                }
            }
            writer.Write(End);
        }
        return output.ToArray();
    }

    /// <summary>Reads what <see cref="Write"/> wrote; throws <see cref="InvalidDataException"/> for anything else.</summary>
    public static CallSnapshot Read(byte[] snapshot)
    {
        using var reader = new BinaryReader(new ZLibStream(new MemoryStream(snapshot), CompressionMode.Decompress));
        try
        {
            if (reader.ReadByte() != Version)
            {
                throw new InvalidDataException("the snapshot is of another version");
            }
            var functionId = reader.ReadUInt32();
            var timestampMicros = reader.ReadInt64();
            var arguments = reader.ReadBytes(reader.ReadInt32());
            var memoryLength = reader.ReadInt64();
            var globals = new List<(ValueKind, long)>();
            for (var count = reader.ReadInt32(); count > 0; count--)
            {
                globals.Add(((ValueKind)reader.ReadByte(), reader.ReadInt64()));
            }
            var chunks = new List<(long, byte[])>();
            for (var offset = reader.ReadInt64(); offset != End; offset = reader.ReadInt64())
            {
                if (offset < 0 || offset >= memoryLength || offset % Chunk != 0 || (chunks.Count > 0 && offset <= chunks[^1].Item1))
                {
                    throw new InvalidDataException("the snapshot has a chunk outside its memory or out of order");
                }
                chunks.Add((offset, reader.ReadBytes((int)Math.Min(Chunk, memoryLength - offset))));
            }
            return new CallSnapshot(functionId, timestampMicros, arguments, memoryLength, globals, chunks);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("the snapshot is cut short", e);
        }
    }

    /// <summary>Puts this state into an instance's memory (grown to its length, which the caller allowed) and globals.</summary>
    public void Apply(Memory memory, IReadOnlyList<Global> globals)
    {
        if (globals.Count != Globals.Count)
        {
            throw new InvalidDataException($"the snapshot has {Globals.Count} globals; the module exports {globals.Count}");
        }
        var length = memory.GetLength();
        if (length < MemoryLength)
        {
            memory.Grow((MemoryLength - length) / Memory.PageSize);
        }
        // Chunks the snapshot lacks are zero there. Only those holding anything (the data
        // segments, what the instance's preinit wrote) are cleared: writing every page of a fresh
        // instance would make all of its memory resident, megabytes per woken call.
        var next = 0;
        for (long offset = 0; offset < MemoryLength; offset += Chunk)
        {
            if (next < Chunks.Count && Chunks[next].Offset == offset)
            {
                var bytes = Chunks[next++].Bytes;
                bytes.CopyTo(memory.GetSpan(offset, bytes.Length));
            }
            else if (offset < length && memory.GetSpan(offset, (int)Math.Min(Chunk, MemoryLength - offset)) is var stale && stale.ContainsAnyExcept((byte)0))
            {
                stale.Clear();
            }
        }
        for (var i = 0; i < globals.Count; i++)
        {
            var (kind, bits) = Globals[i];
            globals[i].SetValue(kind switch
            {
                ValueKind.Int32 => (object)(int)bits,
                ValueKind.Int64 => bits,
                ValueKind.Float32 => BitConverter.Int32BitsToSingle((int)bits),
                ValueKind.Float64 => BitConverter.Int64BitsToDouble(bits),
                _ => throw new InvalidDataException($"the snapshot has a global of kind {kind}"),
            });
        }
    }
}
