using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Procyon.Sats;

/// <summary>Converts JSON into BSATN of a declared type, with errors that name the path.</summary>
public static class JsonToBsatn
{
    private static readonly Dictionary<TypeKind, (Int128 Min, Int128 Max)> IntegerRanges = new()
    {
        [TypeKind.I8] = (sbyte.MinValue, sbyte.MaxValue),
        [TypeKind.U8] = (byte.MinValue, byte.MaxValue),
        [TypeKind.I16] = (short.MinValue, short.MaxValue),
        [TypeKind.U16] = (ushort.MinValue, ushort.MaxValue),
        [TypeKind.I32] = (int.MinValue, int.MaxValue),
        [TypeKind.U32] = (uint.MinValue, uint.MaxValue),
        [TypeKind.I64] = (long.MinValue, long.MaxValue),
        [TypeKind.U64] = (ulong.MinValue, ulong.MaxValue),
        [TypeKind.I128] = (Int128.MinValue, Int128.MaxValue),
    };

    /// <summary>
    /// Writes one value; throws <see cref="ValueConversionException"/> when the JSON does not fit the
    /// type or the value is beyond <see cref="ValueLimits"/>.
    /// </summary>
    public static void Write(JsonElement json, AlgebraicType type, Typespace typespace, BsatnWriter writer) =>
        new Walk(typespace, writer).Value(json, type, 0);

    /// <summary>Arguments of a call: a JSON array (positional) or an object (by parameter name).</summary>
    public static void WriteArguments(JsonElement json, AlgebraicType parameters, Typespace typespace, BsatnWriter writer)
    {
        if (json.ValueKind is not (JsonValueKind.Array or JsonValueKind.Object))
        {
            throw new ValueConversionException(
                $"expected the arguments as a JSON array or object ({Signature(parameters, typespace)}), got {JsonValues.Describe(json)}");
        }
        // The arguments are the first level, as their JSON array or object is.
        new Walk(typespace, writer).Fields(json, parameters, "argument", 0);
    }

    /// <summary>One conversion: its output and what it has spent of <see cref="ValueLimits"/>.</summary>
    private sealed class Walk(Typespace typespace, BsatnWriter writer)
    {
        private readonly ValueBudget _budget = new();

        public void Value(JsonElement json, AlgebraicType type, int depth)
        {
            if (ValueBudget.Enter(depth, writer.WrittenCount) is { } problem)
            {
                throw new ValueConversionException(problem);
            }
            var resolved = typespace.Resolve(type);
            switch (resolved.Kind)
            {
                case TypeKind.Bool:
                    writer.WriteBool(json.ValueKind switch
                    {
                        JsonValueKind.True => true,
                        JsonValueKind.False => false,
                        _ => throw Expected("bool", json),
                    });
                    break;
                case TypeKind.String:
                    writer.WriteString(json.ValueKind == JsonValueKind.String ? json.GetString()! : throw Expected("a string", json));
                    break;
                case TypeKind.F32:
                    var number = ReadFloat(json, "f32");
                    if (double.IsFinite(number) && Math.Abs(number) > float.MaxValue)
                    {
                        throw Expected("f32 (magnitude up to 3.4e38)", json);
                    }
                    writer.WriteU32(BitConverter.SingleToUInt32Bits((float)number));
                    break;
                case TypeKind.F64:
                    writer.WriteU64(BitConverter.DoubleToUInt64Bits(ReadFloat(json, "f64")));
                    break;
                case TypeKind.U128:
                    writer.WriteU128(ReadU128(json));
                    break;
                case TypeKind.Array:
                    WriteArray(json, resolved, depth);
                    break;
                case TypeKind.Product:
                    WriteProduct(json, resolved, depth);
                    break;
                case TypeKind.Sum:
                    WriteSum(json, resolved, depth);
                    break;
                default:
                    WriteInteger(json, resolved.Kind, writer);
                    break;
            }
        }

        /// <summary>
        /// A struct's fields or a call's arguments, from an array in order or an object by name. The
        /// object's properties are matched in one pass and the fields filled in a second.
        /// </summary>
        public void Fields(JsonElement json, AlgebraicType product, string noun, int depth)
        {
            var fields = product.Elements;
            if (json.ValueKind == JsonValueKind.Array)
            {
                if (json.GetArrayLength() != fields.Count)
                {
                    throw new ValueConversionException(
                        $"expected {fields.Count} {noun}s ({Signature(product, typespace)}), got {json.GetArrayLength()}");
                }
                var index = 0;
                foreach (var item in json.EnumerateArray())
                {
                    Field(item, fields[index++], depth);
                }
                return;
            }
            // Pooled: a struct of many optional fields may come as thousands of empty objects.
            var values = ArrayPool<JsonElement?>.Shared.Rent(fields.Count);
            try
            {
                Array.Clear(values, 0, fields.Count);
                foreach (var property in json.EnumerateObject())
                {
                    var index = product.IndexOf(property.Name);
                    if (index < 0)
                    {
                        throw new ValueConversionException(
                            $"unknown {noun} \"{property.Name}\"; expected {Signature(product, typespace)}");
                    }
                    if (values[index] is not null)
                    {
                        throw new ValueConversionException($"{noun} \"{property.Name}\" is given more than once");
                    }
                    values[index] = property.Value;
                }
                for (var i = 0; i < fields.Count; i++)
                {
                    var field = fields[i];
                    if (values[i] is { } value)
                    {
                        Field(value, field, depth);
                    }
                    else if (typespace.Resolve(field.Type).Special == SpecialType.Option)
                    {
                        writer.WriteU8(1);
                    }
                    else
                    {
                        throw new ValueConversionException($"missing {noun} {field.Name} ({typespace.Describe(field.Type)})")
                            .Within(ValueConversionException.Field(field.Name ?? ""));
                    }
                }
            }
            finally
            {
                ArrayPool<JsonElement?>.Shared.Return(values);
            }
        }

        private void WriteArray(JsonElement json, AlgebraicType array, int depth)
        {
            if (array.Special == SpecialType.Bytes && json.ValueKind == JsonValueKind.String)
            {
                var bytes = ParseHex(json, "bytes as a hex string");
                writer.WriteU32((uint)bytes.Length);
                writer.WriteBytes(bytes);
                return;
            }
            if (json.ValueKind != JsonValueKind.Array)
            {
                throw Expected(array.Special == SpecialType.Bytes ? "bytes as a hex string" : $"an array ({typespace.Describe(array)})", json);
            }
            var length = json.GetArrayLength();
            if (typespace.IsZeroSized(array.Item!) && _budget.TakeZeroSized(length) is { } problem)
            {
                throw new ValueConversionException(problem);
            }
            writer.WriteU32((uint)length);
            var index = 0;
            foreach (var item in json.EnumerateArray())
            {
                try
                {
                    Value(item, array.Item!, depth + 1);
                }
                catch (ValueConversionException e)
                {
                    throw e.Within(ValueConversionException.Index(index));
                }
                index++;
            }
        }

        private void WriteProduct(JsonElement json, AlgebraicType product, int depth)
        {
            switch (product.Special)
            {
                case SpecialType.Unit when json.ValueKind is JsonValueKind.Null
                    || (json.ValueKind == JsonValueKind.Array && json.GetArrayLength() == 0)
                    || (json.ValueKind == JsonValueKind.Object && !json.EnumerateObject().Any()):
                    return;
                case SpecialType.Unit:
                    throw Expected("null (unit)", json);
                case SpecialType.Identity:
                    var identity = ParseHex(json, "an identity (64 hex digits)");
                    writer.WriteU32(32);
                    writer.WriteBytes(identity.Length == 32 ? identity : throw Expected("an identity (64 hex digits)", json));
                    return;
                case SpecialType.Timestamp when json.ValueKind == JsonValueKind.String:
                    writer.WriteU64((ulong)(JsonValues.TryParseTimestamp(json.GetString()!, out var micros)
                        ? micros
                        : throw Expected("a timestamp (RFC 3339, e.g. \"2026-01-01T12:00:00Z\", or microseconds since the Unix epoch)", json)));
                    return;
                case SpecialType.Timestamp or SpecialType.TimeDuration:
                    WriteInteger(json, TypeKind.I64, writer);
                    return;
                case SpecialType.Uuid:
                    writer.WriteU128(json.ValueKind == JsonValueKind.String && UuidValues.TryParse(json.GetString()!, out var uuid)
                        ? uuid
                        : throw Expected("a UUID (8-4-4-4-12 hex digits, e.g. \"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\")", json));
                    return;
            }
            if (json.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array))
            {
                throw Expected($"an object {typespace.Describe(product)}", json);
            }
            Fields(json, product, "field", depth);
        }

        private void Field(JsonElement json, TypeElement field, int depth)
        {
            try
            {
                Value(json, field.Type, depth + 1);
            }
            catch (ValueConversionException e)
            {
                throw e.Within(ValueConversionException.Field(field.Name ?? ""));
            }
        }

        private void WriteSum(JsonElement json, AlgebraicType sum, int depth)
        {
            if (sum.Special == SpecialType.Option)
            {
                if (json.ValueKind == JsonValueKind.Null)
                {
                    writer.WriteU8(1);
                    return;
                }
                writer.WriteU8(0);
                Value(json, sum.Elements[0].Type, depth + 1);
                return;
            }
            var (name, payload) = json.ValueKind switch
            {
                JsonValueKind.String => (json.GetString()!, default(JsonElement?)),
                JsonValueKind.Object when json.EnumerateObject().Count() == 1 =>
                    (json.EnumerateObject().First().Name, json.EnumerateObject().First().Value),
                _ => throw Expected(Variants(sum), json),
            };
            var tag = sum.IndexOf(name);
            if (tag < 0)
            {
                throw Expected(Variants(sum), json);
            }
            var variant = sum.Elements[tag];
            writer.WriteU8((byte)tag);
            if (payload is { } value)
            {
                Field(value, variant, depth);
            }
            else if (typespace.Resolve(variant.Type).Special != SpecialType.Unit)
            {
                throw new ValueConversionException($"variant {name} needs a value: {{\"{name}\": {typespace.Describe(variant.Type)}}}");
            }
        }
    }

    private static void WriteInteger(JsonElement json, TypeKind kind, BsatnWriter writer)
    {
        var (min, max) = IntegerRanges[kind];
        Int128 value;
        if (json.ValueKind == JsonValueKind.Number && json.TryGetInt64(out var small))
        {
            value = small;
        }
        else if (!TryGetIntegerText(json, kind, out var text) || !Int128.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value))
        {
            throw Expected(IntegerName(kind), json);
        }
        if (value < min || value > max)
        {
            throw Expected($"{IntegerName(kind)} ({min}..{max})", json);
        }
        switch (kind)
        {
            case TypeKind.I8 or TypeKind.U8:
                writer.WriteU8((byte)value);
                break;
            case TypeKind.I16 or TypeKind.U16:
                writer.WriteU16((ushort)value);
                break;
            case TypeKind.I32 or TypeKind.U32:
                writer.WriteU32((uint)value);
                break;
            case TypeKind.I64 or TypeKind.U64:
                writer.WriteU64((ulong)value);
                break;
            default:
                writer.WriteU128((UInt128)value);
                break;
        }
    }

    /// <summary>An integer type as errors spell it (<c>i32</c>); only errors need it.</summary>
    private static string IntegerName(TypeKind kind) => kind.ToString().ToLowerInvariant();

    /// <summary>Numbers are always accepted; strings only for 64- and 128-bit integers.</summary>
    private static bool TryGetIntegerText(JsonElement json, TypeKind kind, out string text)
    {
        text = json.ValueKind switch
        {
            JsonValueKind.Number => json.GetRawText(),
            JsonValueKind.String when kind is TypeKind.I64 or TypeKind.U64 or TypeKind.I128 or TypeKind.U128 => json.GetString()!,
            _ => "",
        };
        return text.Length > 0;
    }

    private static UInt128 ReadU128(JsonElement json) =>
        TryGetIntegerText(json, TypeKind.U128, out var text)
            && UInt128.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw Expected($"u128 (0..{UInt128.MaxValue})", json);

    private static double ReadFloat(JsonElement json, string name) => json.ValueKind switch
    {
        JsonValueKind.Number => json.GetDouble(),
        JsonValueKind.String => json.GetString() switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            _ => throw Expected($"{name} (a number, \"NaN\", \"Infinity\" or \"-Infinity\")", json),
        },
        _ => throw Expected(name, json),
    };

    private static string Variants(AlgebraicType sum) =>
        $"one of {string.Join(", ", sum.Elements.Select(v => $"{{\"{v.Name}\": ...}}"))}";

    private static byte[] ParseHex(JsonElement json, string expectation)
    {
        var text = json.ValueKind == JsonValueKind.String ? json.GetString()! : throw Expected(expectation, json);
        try
        {
            return Convert.FromHexString(text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text);
        }
        catch (FormatException)
        {
            throw Expected(expectation, json);
        }
    }

    private static string Signature(AlgebraicType product, Typespace typespace) =>
        string.Join(", ", product.Elements.Select(f => $"{f.Name}: {typespace.Describe(f.Type)}"));

    private static ValueConversionException Expected(string expectation, JsonElement json) =>
        new($"expected {expectation}, got {JsonValues.Describe(json)}");
}
