namespace Procyon.Runtime;

/// <summary>
/// Reads and amends the sections of a wasm binary that Wasmtime has validated, without compiling
/// it: the imports (compiling the published bytes only to list them took a quarter of a
/// publish), and exports of the mutable globals, which a durable call's snapshot saves.
/// </summary>
internal static class WasmBinary
{
    /// <summary>The prefix of the exports <see cref="ExportMutableGlobals"/> adds, followed by the global's index.</summary>
    public const string GlobalExportPrefix = "__procyon_global_";

    private const byte ImportSection = 2;
    private const byte GlobalSection = 6;
    private const byte ExportSection = 7;
    private const byte GlobalKind = 3;
    private const int HeaderLength = 8;

    /// <summary>The (module, name, kind) of every import; throws <see cref="ModuleRejectedException"/> for what it cannot read.</summary>
    public static List<(string Module, string Name, byte Kind)> Imports(ReadOnlySpan<byte> wasm)
    {
        var imports = new List<(string, string, byte)>();
        if (Find(wasm, ImportSection) is { } section)
        {
            var reader = new Reader(wasm[section.Contents]);
            for (var count = reader.U32(); count > 0; count--)
            {
                var (module, name) = (reader.Name(), reader.Name());
                imports.Add((module, name, reader.Peek()));
                SkipImportDescription(ref reader);
            }
        }
        return imports;
    }

    /// <summary>
    /// Exports every mutable global the module defines (numbers only) as <see cref="GlobalExportPrefix"/>
    /// and its index, so the host can read and restore them, as it does the linear memory; the
    /// bytes unchanged when a global is of another type or the module has no export section.
    /// </summary>
    public static byte[] ExportMutableGlobals(byte[] wasm)
    {
        var imported = (uint)Imports(wasm).Count(i => i.Kind == GlobalKind);
        if (Find(wasm, GlobalSection) is not { } globals || Find(wasm, ExportSection) is not { } exports)
        {
            return wasm;
        }
        var mutable = new List<uint>();
        var reader = new Reader(wasm.AsSpan(globals.Contents));
        for (uint count = reader.U32(), index = 0; index < count; index++)
        {
            var type = reader.Byte();
            var isMutable = reader.Byte() == 1;
            SkipConstantExpression(ref reader);
            if (isMutable)
            {
                if (type is not (0x7F or 0x7E or 0x7D or 0x7C))
                {
                    return wasm;
                }
                mutable.Add(imported + index);
            }
        }
        var body = new List<byte>();
        var existing = new Reader(wasm.AsSpan(exports.Contents));
        WriteU32(body, existing.U32() + (uint)mutable.Count);
        body.AddRange(wasm.AsSpan(exports.Contents)[existing.Position..]);
        foreach (var index in mutable)
        {
            var name = System.Text.Encoding.UTF8.GetBytes(GlobalExportPrefix + index);
            WriteU32(body, (uint)name.Length);
            body.AddRange(name);
            body.Add(GlobalKind);
            WriteU32(body, index);
        }
        var section = new List<byte> { ExportSection };
        WriteU32(section, (uint)body.Count);
        section.AddRange(body);
        return [.. wasm.AsSpan(0, exports.Start), .. section, .. wasm.AsSpan(exports.Contents.End.Value)];
    }

    /// <summary>The first section with this id: where it starts (its id byte) and its contents; or null.</summary>
    private static (int Start, Range Contents)? Find(ReadOnlySpan<byte> wasm, byte id)
    {
        var reader = new Reader(wasm) { Position = HeaderLength };
        while (!reader.AtEnd)
        {
            var start = reader.Position;
            var sectionId = reader.Byte();
            var size = reader.U32();
            if (size > wasm.Length - reader.Position)
            {
                throw new ModuleRejectedException("the module ends inside a section");
            }
            if (sectionId == id)
            {
                return (start, new Range(reader.Position, reader.Position + (int)size));
            }
            reader.Position += (int)size;
        }
        return null;
    }

    private static void SkipImportDescription(ref Reader reader)
    {
        switch (reader.Byte())
        {
            case 0x00: // function: type index
                reader.U32();
                break;
            case 0x01: // table: reference type, limits
                reader.Byte();
                SkipLimits(ref reader);
                break;
            case 0x02: // memory: limits
                SkipLimits(ref reader);
                break;
            case GlobalKind: // global: value type, mutability
                reader.Byte();
                reader.Byte();
                break;
            case 0x04: // tag: attribute, type index
                reader.Byte();
                reader.U32();
                break;
            case var kind:
                throw new ModuleRejectedException($"the module has an import of unknown kind 0x{kind:x2}");
        }
    }

    private static void SkipLimits(ref Reader reader)
    {
        var flags = reader.Byte();
        reader.U64();
        if ((flags & 1) != 0)
        {
            reader.U64();
        }
    }

    /// <summary>Skips a global's initializer: constants, <c>global.get</c>, references and extended-constant arithmetic, up to <c>end</c>.</summary>
    private static void SkipConstantExpression(ref Reader reader)
    {
        while (true)
        {
            switch (reader.Byte())
            {
                case 0x0B: // end
                    return;
                case 0x41 or 0x42 or 0x23 or 0xD2: // i32.const, i64.const, global.get, ref.func
                    reader.U64();
                    break;
                case 0x43: // f32.const
                    reader.Position += 4;
                    break;
                case 0x44: // f64.const
                    reader.Position += 8;
                    break;
                case 0xD0: // ref.null heap type (a signed LEB)
                    reader.U64();
                    break;
                case 0xFD: // v128.const: the SIMD prefix's opcode, then 16 bytes
                    reader.U32();
                    reader.Position += 16;
                    break;
                case 0x6A or 0x6B or 0x6C or 0x7C or 0x7D or 0x7E: // i32/i64 add, sub, mul
                    break;
                case var opcode:
                    throw new ModuleRejectedException($"the module has a global initializer with opcode 0x{opcode:x2} the host does not read");
            }
        }
    }

    private static void WriteU32(List<byte> bytes, uint value)
    {
        do
        {
            var b = (byte)(value & 0x7f);
            value >>= 7;
            bytes.Add(value == 0 ? b : (byte)(b | 0x80));
        }
        while (value != 0);
    }

    private ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;

        public int Position { get; set; }

        public readonly bool AtEnd => Position >= _bytes.Length;

        public readonly byte Peek() => Position < _bytes.Length
            ? _bytes[Position]
            : throw new ModuleRejectedException("the module ends inside a section");

        public byte Byte()
        {
            var b = Peek();
            Position++;
            return b;
        }

        public uint U32() => U64() is var value && value <= uint.MaxValue
            ? (uint)value
            : throw new ModuleRejectedException("the module has a malformed number");

        /// <summary>An unsigned LEB128 number; signed ones are skipped with it too, as only their length matters here.</summary>
        public ulong U64()
        {
            ulong value = 0;
            for (var shift = 0; shift < 70; shift += 7)
            {
                var b = Byte();
                if (shift < 64)
                {
                    value |= (ulong)(b & 0x7f) << shift;
                }
                if ((b & 0x80) == 0)
                {
                    return value;
                }
            }
            throw new ModuleRejectedException("the module has a malformed number");
        }

        public string Name()
        {
            var length = (int)U32();
            if (length > _bytes.Length - Position)
            {
                throw new ModuleRejectedException("the module ends inside a section");
            }
            var name = System.Text.Encoding.UTF8.GetString(_bytes.Slice(Position, length));
            Position += length;
            return name;
        }
    }
}
