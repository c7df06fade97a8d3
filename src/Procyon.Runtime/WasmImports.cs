namespace Procyon.Runtime;

/// <summary>
/// Reads the import section of a wasm binary that Wasmtime has validated, without compiling it
/// (compiling the published bytes only to list their imports took a quarter of a publish).
/// </summary>
internal static class WasmImports
{
    private const byte ImportSection = 2;

    /// <summary>The (module, name) of every import; throws <see cref="ModuleRejectedException"/> for what it cannot read.</summary>
    public static List<(string Module, string Name)> Read(ReadOnlySpan<byte> wasm)
    {
        var reader = new Reader(wasm) { Position = 8 };
        var imports = new List<(string, string)>();
        while (!reader.AtEnd)
        {
            var id = reader.Byte();
            var size = reader.U32();
            if (size > wasm.Length - reader.Position)
            {
                throw new ModuleRejectedException("the module ends inside a section");
            }
            var end = reader.Position + (int)size;
            if (id == ImportSection)
            {
                for (var count = reader.U32(); count > 0; count--)
                {
                    imports.Add((reader.Name(), reader.Name()));
                    SkipDescription(ref reader);
                }
                return imports;
            }
            reader.Position = end;
        }
        return imports;
    }

    private static void SkipDescription(ref Reader reader)
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
            case 0x03: // global: value type, mutability
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

    private ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;

        public int Position { get; set; }

        public readonly bool AtEnd => Position >= _bytes.Length;

        public byte Byte() => Position < _bytes.Length
            ? _bytes[Position++]
            : throw new ModuleRejectedException("the module ends inside its import section");

        public uint U32() => U64() is var value && value <= uint.MaxValue
            ? (uint)value
            : throw new ModuleRejectedException("the module has a malformed number in its import section");

        public ulong U64()
        {
            ulong value = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = Byte();
                value |= (ulong)(b & 0x7f) << shift;
                if ((b & 0x80) == 0)
                {
                    return value;
                }
            }
            throw new ModuleRejectedException("the module has a malformed number in its import section");
        }

        public string Name()
        {
            var length = (int)U32();
            if (length > _bytes.Length - Position)
            {
                throw new ModuleRejectedException("the module ends inside its import section");
            }
            var name = System.Text.Encoding.UTF8.GetString(_bytes.Slice(Position, length));
            Position += length;
            return name;
        }
    }
}
