package dev.tokenpulse.flink;

import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * The catalog model a reported model folds to ("gpt-4o-2024-08-06" -> "gpt-4o"), as
 * schemas/pricing.py's PriceTable.catalog_model: NULL when the catalog does not know it.
 * Rollups and reports group by it; the raw row keeps the reported model.
 */
public class CatalogModel extends ScalarFunction {
    private transient PriceCatalog catalog;

    @Override
    public void open(FunctionContext context) {
        catalog = PriceCatalog.decode(context.getJobParameter(PriceCatalog.PARAMETER, ""));
    }

    public String eval(String provider, String model) {
        if (provider == null || model == null) {
            return null;
        }
        return catalog.resolve(provider, model).catalogModel;
    }
}
