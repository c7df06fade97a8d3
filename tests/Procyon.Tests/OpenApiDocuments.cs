using Microsoft.OpenApi;
using Microsoft.OpenApi.Reader;
using Procyon.Testing;

namespace Procyon.Tests;

/// <summary>Checks a server's OpenAPI document with Microsoft.OpenApi's reader and validator.</summary>
internal static class OpenApiDocuments
{
    public static async Task AssertValidAsync(ServerHandle server)
    {
        var text = await server.Http.GetStringAsync("/swagger/v1/swagger.json");

        var read = OpenApiDocument.Parse(text, OpenApiConstants.Json, new OpenApiReaderSettings());

        Assert.Empty(read.Diagnostic!.Errors);
        var errors = read.Document!.Validate(ValidationRuleSet.GetDefaultRuleSet());
        Assert.Empty(errors!);
        Assert.StartsWith("3.1", read.Diagnostic.SpecificationVersion.ToString().Replace("OpenApi", "", StringComparison.Ordinal).Replace('_', '.'), StringComparison.Ordinal);
    }
}
