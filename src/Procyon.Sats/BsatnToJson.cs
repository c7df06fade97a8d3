using System.Text.Json;

namespace Procyon.Sats;

/// <summary>Converts BSATN of a declared type into JSON (README, "Values in JSON").</summary>
public static class BsatnToJson
{
    /// <summary>
    /// Writes one value; throws <see cref="InvalidDataException"/> when the bytes do not match the
    /// type or the value is beyond <see cref="ValueLimits"/>.
    /// </summary>
    public static void Write(ref BsatnReader reader, AlgebraicType type, Typespace typespace, Utf8JsonWriter json)
    {
        new Walk(typespace, json).Value(ref reader, type, 0);
        // The walk checks the size before each value; this catches a last long string.
        if (ValueBudget.Size(json.BytesCommitted + json.BytesPending) is { } problem)
        {
            throw new InvalidDataException(problem);
        }
    }

    /// <summary>A thread's buffer and writer larger than this are not kept for its next conversion.</summary>
    private const int KeptScratchBytes = 64 << 10;

    /// <summary>Each thread's buffer and writer, reused by its conversions (one at a time: a conversion never awaits).</summary>
    [ThreadStatic]
    private static (System.Buffers.ArrayBufferWriter<byte> Output, Utf8JsonWriter Json)? t_scratch;

    /// <summary>Converts a whole buffer that holds exactly one value; the array returned holds its JSON exactly.</summary>
    public static byte[] Convert(ReadOnlySpan<byte> bsatn, AlgebraicType type, Typespace typespace)
    {
        var (output, json) = t_scratch ?? (new(256), new Utf8JsonWriter(Stream.Null));
        t_scratch = null;
        output.ResetWrittenCount();
        json.Reset(output);
        var reader = new BsatnReader(bsatn);
        Write(ref reader, type, typespace, json);
        if (reader.Remaining != 0)
        {
            throw new InvalidDataException($"{reader.Remaining} bytes left over after the value");
        }
        json.Flush();
        var converted = output.WrittenSpan.ToArray();
        if (output.Capacity <= KeptScratchBytes)
        {
            t_scratch = (output, json);
        }
        return converted;
    }

    /// <summary>One conversion: its output and what it has spent of <see cref="ValueLimits"/>.</summary>
    private sealed class Walk(Typespace typespace, Utf8JsonWriter json)
    {
        private readonly ValueBudget _budget = new();

        public void Value(ref BsatnReader reader, AlgebraicType type, int depth)
        {
            if (ValueBudget.Enter(depth, json.BytesCommitted + json.BytesPending) is { } problem)
            {
                throw new InvalidDataException(problem);
            }
            var resolved = typespace.Resolve(type);
            switch (resolved.Kind)
            {
                case TypeKind.Bool:
                    json.WriteBooleanValue(reader.ReadBool());
                    break;
                case TypeKind.I8:
                    json.WriteNumberValue((sbyte)reader.ReadU8());
                    break;
                case TypeKind.U8:
                    json.WriteNumberValue(reader.ReadU8());
                    break;
                case TypeKind.I16:
                    json.WriteNumberValue((short)reader.ReadU16());
                    break;
                case TypeKind.U16:
                    json.WriteNumberValue(reader.ReadU16());
                    break;
                case TypeKind.I32:
                    json.WriteNumberValue((int)reader.ReadU32());
                    break;
                case TypeKind.U32:
                    json.WriteNumberValue(reader.ReadU32());
                    break;
                case TypeKind.I64:
                    WriteInteger((long)reader.ReadU64(), json);
                    break;
                case TypeKind.U64:
                    WriteInteger((UInt128)reader.ReadU64(), json);
                    break;
                case TypeKind.I128:
                    WriteInteger((Int128)reader.ReadU128(), json);
                    break;
                case TypeKind.U128:
                    WriteInteger(reader.ReadU128(), json);
                    break;
                case TypeKind.F32:
                    var single = BitConverter.UInt32BitsToSingle(reader.ReadU32());
                    if (float.IsFinite(single))
                    {
                        // The float overload prints the shortest text that reads back as this f32 (0.1, not 0.10000000149011612).
                        json.WriteNumberValue(single);
                    }
                    else
                    {
                        WriteFloat(single, json);
                    }
                    break;
                case TypeKind.F64:
                    WriteFloat(BitConverter.UInt64BitsToDouble(reader.ReadU64()), json);
                    break;
                case TypeKind.String:
                    json.WriteStringValue(reader.ReadString());
                    break;
                case TypeKind.Array when resolved.Special == SpecialType.Bytes:
                    json.WriteStringValue(System.Convert.ToHexStringLower(reader.ReadBytes(reader.ReadLength())));
                    break;
                case TypeKind.Array:
                    var count = ReadArrayLength(ref reader, resolved.Item!);
                    json.WriteStartArray();
                    for (var i = 0; i < count; i++)
                    {
                        Value(ref reader, resolved.Item!, depth + 1);
                    }
                    json.WriteEndArray();
                    break;
                case TypeKind.Product:
                    WriteProduct(ref reader, resolved, depth);
                    break;
                case TypeKind.Sum:
                    WriteSum(ref reader, resolved, depth);
                    break;
                default:
                    throw new InvalidDataException($"cannot write a value of type {resolved.Kind}");
            }
        }

        private void WriteProduct(ref BsatnReader reader, AlgebraicType product, int depth)
        {
            switch (product.Special)
            {
                case SpecialType.Unit:
                    json.WriteNullValue();
                    return;
                case SpecialType.Identity:
                    var length = reader.ReadLength();
                    json.WriteStringValue(System.Convert.ToHexStringLower(reader.ReadBytes(length)));
                    return;
                case SpecialType.Timestamp:
                    var micros = (long)reader.ReadU64();
                    if (JsonValues.TryFormatTimestamp(micros) is { } text)
                    {
                        json.WriteStringValue(text);
                    }
                    else
                    {
                        // Beyond what RFC 3339 can spell (years 1 to 9999): the microseconds themselves.
                        WriteInteger(micros, json);
                    }
                    return;
                case SpecialType.TimeDuration:
                    WriteInteger((long)reader.ReadU64(), json);
                    return;
                case SpecialType.Uuid:
                    json.WriteStringValue(UuidValues.Format(reader.ReadU128()));
                    return;
            }
            json.WriteStartObject();
            for (var i = 0; i < product.Elements.Count; i++)
            {
                var field = product.Elements[i];
                json.WritePropertyName(field.Name ?? i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                Value(ref reader, field.Type, depth + 1);
            }
            json.WriteEndObject();
        }

        private void WriteSum(ref BsatnReader reader, AlgebraicType sum, int depth)
        {
            var tag = reader.ReadU8();
            if (tag >= sum.Elements.Count)
            {
                throw new InvalidDataException($"sum tag {tag} is out of range ({sum.Elements.Count} variants)");
            }
            var variant = sum.Elements[tag];
            if (sum.Special == SpecialType.Option)
            {
                if (tag == 1)
                {
                    json.WriteNullValue();
                }
                else
                {
                    Value(ref reader, variant.Type, depth + 1);
                }
                return;
            }
            json.WriteStartObject();
            json.WritePropertyName(variant.Name ?? tag.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Value(ref reader, variant.Type, depth + 1);
            json.WriteEndObject();
        }

        /// <summary>
        /// An array's length: each element takes at least a byte, so the bytes left bound it, except
        /// for zero-sized elements, which the budget bounds.
        /// </summary>
        private int ReadArrayLength(ref BsatnReader reader, AlgebraicType item)
        {
            if (!typespace.IsZeroSized(item))
            {
                return reader.ReadLength();
            }
            var count = reader.ReadLength(minimumElementSize: 0);
            return _budget.TakeZeroSized(count) is { } problem ? throw new InvalidDataException(problem) : count;
        }
    }

    private static void WriteInteger(Int128 value, Utf8JsonWriter json)
    {
        if (value >= -JsonValues.MaxSafeInteger && value <= JsonValues.MaxSafeInteger)
        {
            json.WriteNumberValue((long)value);
        }
        else
        {
            json.WriteStringValue(value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    private static void WriteInteger(UInt128 value, Utf8JsonWriter json)
    {
        if (value <= (UInt128)JsonValues.MaxSafeInteger)
        {
            json.WriteNumberValue((long)value);
        }
        else
        {
            json.WriteStringValue(value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    private static void WriteFloat(double value, Utf8JsonWriter json)
    {
        if (double.IsFinite(value))
        {
            json.WriteNumberValue(value);
        }
        else
        {
            json.WriteStringValue(double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
        }
    }
}
