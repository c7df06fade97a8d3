namespace Procyon.Runtime;

/// <summary>Names of the exports the SDK generates (src/rust/procyon/src/rt.rs).</summary>
internal static class ModuleAbi
{
    public const string PreinitPrefix = "__procyon_preinit__";
    public const string Describe = "__procyon_describe__";
    public const string Call = "__procyon_call__";
    public const string AsyncifyData = "__procyon_asyncify_data__";

    /// <summary>Function flag in the description: results reach every subscriber.</summary>
    public const byte FunctionPublic = 1;
}

/// <summary>A module that cannot be published, with the reason the publisher gets (400).</summary>
public sealed class ModuleRejectedException(string message) : Exception(message);
