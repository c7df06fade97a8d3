using System.Collections.Concurrent;

namespace Procyon.Sats;

/// <summary>
/// The named types of a module, which other types refer to by index. Each reference's target and
/// each type's size class are worked out once, when the typespace is built, in time linear in
/// its size: walks over values never follow chains of references.
/// </summary>
public sealed class Typespace
{
    private readonly AlgebraicType[] _resolved;
    private readonly bool[] _zeroSized;
    private readonly ConcurrentDictionary<AlgebraicType, bool> _zeroSizedInline = new(ReferenceEqualityComparer.Instance);

    public static Typespace Empty { get; } = new([], new Dictionary<uint, string>());

    /// <summary>Throws <see cref="InvalidDataException"/> for a reference outside the typespace or a cycle of references only.</summary>
    public Typespace(IReadOnlyList<AlgebraicType> types, IReadOnlyDictionary<uint, string> names)
    {
        Types = types;
        Names = names;
        _resolved = ResolveAll(types);
        _zeroSized = FindZeroSized();
    }

    public IReadOnlyList<AlgebraicType> Types { get; }

    /// <summary>User-facing names of referenced types, by index.</summary>
    public IReadOnlyDictionary<uint, string> Names { get; }

    /// <summary>The structural type a reference ends at (other types are their own).</summary>
    public AlgebraicType Resolve(AlgebraicType type) => type.Kind == TypeKind.Ref ? _resolved[IndexOf(type)] : type;

    /// <summary>
    /// Whether values of the type take no BSATN bytes: unit and structs of only such fields. The
    /// bytes of a value cannot bound how many of these its arrays hold.
    /// </summary>
    public bool IsZeroSized(AlgebraicType type) => type.Kind switch
    {
        TypeKind.Ref => _zeroSized[IndexOf(type)],
        TypeKind.Product => _zeroSizedInline.GetOrAdd(type, static (product, typespace) => product.Elements.All(e => typespace.IsZeroSized(e.Type)), this),
        _ => false,
    };

    /// <summary>How a type is spelled in error messages and documentation, Rust-style.</summary>
    public string Describe(AlgebraicType type) => Describe(type, index => Names.TryGetValue(index, out var name) ? name : $"&{index}");

    /// <summary>Like <see cref="Describe(AlgebraicType)"/>, with references spelled by <paramref name="reference"/>.</summary>
    public string Describe(AlgebraicType type, Func<uint, string> reference) => type.Kind switch
    {
        TypeKind.Ref => reference(type.Reference),
        TypeKind.Array when type.Special == SpecialType.Bytes => "bytes",
        TypeKind.Array => $"Vec<{Describe(type.Item!, reference)}>",
        TypeKind.Sum when type.Special == SpecialType.Option => $"Option<{Describe(type.Elements[0].Type, reference)}>",
        TypeKind.Product => type.Special switch
        {
            SpecialType.Unit => "()",
            SpecialType.Identity => "Identity",
            SpecialType.Timestamp => "Timestamp",
            SpecialType.TimeDuration => "TimeDuration",
            SpecialType.Uuid => "Uuid",
            _ => "{ " + string.Join(", ", type.Elements.Select(e => $"{e.Name}: {Describe(e.Type, reference)}")) + " }",
        },
        TypeKind.Sum => string.Join(" | ", type.Elements.Select(e => e.Type.Special == SpecialType.Unit ? e.Name : $"{e.Name}({Describe(e.Type, reference)})")),
        TypeKind.String => "String",
        _ => type.Kind.ToString().ToLowerInvariant(),
    };

    private int IndexOf(AlgebraicType reference) =>
        reference.Reference < _resolved.Length
            ? (int)reference.Reference
            : throw new InvalidDataException($"type reference {reference.Reference} is outside the typespace ({_resolved.Length} types)");

    /// <summary>Follows each chain of references once: every index joins one chain at most, then is resolved.</summary>
    private static AlgebraicType[] ResolveAll(IReadOnlyList<AlgebraicType> types)
    {
        var resolved = new AlgebraicType?[types.Count];
        var reachedFrom = new int[types.Count];
        var chain = new List<int>();
        for (var start = 0; start < types.Count; start++)
        {
            chain.Clear();
            var index = start;
            while (resolved[index] is null)
            {
                var type = types[index];
                if (type.Kind != TypeKind.Ref)
                {
                    resolved[index] = type;
                    break;
                }
                if (reachedFrom[index] == start + 1)
                {
                    throw new InvalidDataException($"type {start} refers only to references, in a cycle");
                }
                reachedFrom[index] = start + 1;
                chain.Add(index);
                index = type.Reference < types.Count
                    ? (int)type.Reference
                    : throw new InvalidDataException($"type reference {type.Reference} is outside the typespace ({types.Count} types)");
            }
            foreach (var link in chain)
            {
                resolved[link] = resolved[index];
            }
        }
        return resolved!;
    }

    /// <summary>
    /// The greatest fixpoint: a named type is zero-sized unless one of its fields (through
    /// structs) is not. Each type's fields are walked once; when a type turns out not to be
    /// zero-sized, so do the types whose fields reach it. A struct that holds itself only through
    /// struct fields has no finite values; counting it as zero-sized is the cautious side.
    /// </summary>
    private bool[] FindZeroSized()
    {
        var zeroSized = new bool[Types.Count];
        var dependents = new List<int>?[Types.Count];
        var sized = new Stack<int>();
        for (var i = 0; i < Types.Count; i++)
        {
            zeroSized[i] = CollectFieldReferences(Types[i], i, dependents);
            if (!zeroSized[i])
            {
                sized.Push(i);
            }
        }
        while (sized.TryPop(out var index))
        {
            foreach (var dependent in dependents[index] ?? [])
            {
                if (zeroSized[dependent])
                {
                    zeroSized[dependent] = false;
                    sized.Push(dependent);
                }
            }
        }
        return zeroSized;
    }

    /// <summary>False when the type can never be zero-sized; else records <paramref name="owner"/> as depending on each named type among its fields.</summary>
    private bool CollectFieldReferences(AlgebraicType type, int owner, List<int>?[] dependents)
    {
        switch (type.Kind)
        {
            case TypeKind.Ref:
                (dependents[IndexOf(type)] ??= []).Add(owner);
                return true;
            case TypeKind.Product:
                foreach (var field in type.Elements)
                {
                    if (!CollectFieldReferences(field.Type, owner, dependents))
                    {
                        return false;
                    }
                }
                return true;
            default:
                return false;
        }
    }
}
